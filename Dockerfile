# The fleet promotion bot as a small, non-root, reproducible image.
#   docker build -t fleet-bot .
#   docker run -d -p 3000:3000 -v fleet-bot:/app --stop-timeout 35 fleet-bot
# The first start (no credentials) serves the GitHub App setup page, which writes /app/.env.

# Pinned by version; the Python minor matches the one requirements.lock was compiled for.
FROM python:3.11.13-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/opt/bot \
    HOST=0.0.0.0 \
    PORT=3000 \
    LOG_FORMAT=json

# Dependencies first, exactly as locked (every file checked against its hash; wheels only, so no
# compiler runs), in a layer that changes only with the lock.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

# The code, owned by root: the service can read it, never change it.
COPY app.yml /opt/bot/app.yml
COPY bot /opt/bot/bot
RUN python -m compileall -q /opt/bot/bot

# The service's own directory: the setup page's .env and DATA_DIR's inbox. Mount a volume here.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin bot \
    && install -d -o bot -g bot -m 0700 /app /app/data
WORKDIR /app
VOLUME ["/app"]
USER 10001:10001

EXPOSE 3000
# aiohttp turns SIGTERM into a graceful stop: no new deliveries, in-flight ones finish (25 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]
CMD ["python", "-m", "bot", "serve"]
