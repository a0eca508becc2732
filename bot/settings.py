"""Settings from the environment, with the names GitHub App users know from Probot.

Every problem is reported as one line that names the setting and never its value, because the
values are secrets (private key, webhook secret) that must not reach a terminal or a log.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_API_URL = "https://api.github.com"
CREDENTIAL_NAMES = ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET")


class SettingsError(Exception):
    """A setting is missing or malformed. The message names the setting, never its value."""


@dataclass(frozen=True)
class Settings:
    app_id: str | None
    private_key: str | None = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    port: int = 3000
    host: str = "0.0.0.0"
    webhook_path: str = "/api/github/webhooks"
    github_api_url: str = DEFAULT_API_URL
    github_url: str = "https://github.com"
    log_level: str = "INFO"
    log_format: str = "pretty"
    data_dir: Path = Path("data")
    resync_interval: float = 600.0
    production: bool = False
    #: How long team memberships are trusted before they are read again (seconds).
    team_cache_ttl: float = 300.0
    #: Seconds a dashboard refresh waits for more events before it runs (debounce).
    dashboard_debounce: float = 15.0
    #: Seconds one request to GitHub may take before it is retried.
    github_timeout: float = 20.0
    #: Deliveries processed at the same time (the rest wait in the inbox's queue).
    workers: int = 16
    #: Bound of in-flight requests to GitHub (GitHub's secondary limit is 100 concurrent).
    max_concurrent_requests: int = 50
    #: Megabytes of immutable git objects cached on disk under DATA_DIR (0: memory only).
    cache_max_mb: int = 1024
    #: Megabytes a repository archive may unpack to before it is refused.
    archive_max_mb: int = 2048
    #: ``postgresql://...``: the inbox, locks and jobs shared by every replica (None: SQLite).
    database_url: str | None = field(default=None, repr=False)
    #: Seconds between readings of the app's delivery log for missed deliveries (0: off).
    recovery_interval: float = 600.0

    @property
    def has_credentials(self) -> bool:
        return bool(self.app_id and self.private_key and self.webhook_secret)

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear in output (used by log redaction and tests)."""
        values = [self.private_key, self.webhook_secret, self.database_url]
        password = urlsplit(self.database_url).password if self.database_url else None
        return tuple(s for s in (*values, password) if s)


def web_url_for(api_url: str) -> str:
    """GitHub's web origin for an API URL: api.github.com -> github.com, GHES /api/v3 -> host."""
    parts = urlsplit(api_url)
    host = parts.netloc
    if host == "api.github.com":
        return f"{parts.scheme}://github.com"
    path = parts.path.rstrip("/")
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    return f"{parts.scheme}://{host}{path}"


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number between {lo} and {hi}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be a whole number between {lo} and {hi}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, zero_ok: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise SettingsError(f"{name} must be a positive number of seconds")
    return value


def private_key_from_env(env: Mapping[str, str]) -> str | None:
    raw = env.get("PRIVATE_KEY", "")
    path = env.get("PRIVATE_KEY_PATH", "").strip()
    if raw.strip():
        # Probot's convention: a literal backslash-n in the variable stands for a newline.
        text = raw.replace("\\n", "\n").strip() + "\n"
        name = "PRIVATE_KEY"
    elif path:
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"PRIVATE_KEY_PATH names a file that cannot be read ({exc.strerror})"
            ) from None
        except UnicodeDecodeError:
            raise SettingsError("PRIVATE_KEY_PATH names a file that is not PEM text") from None
        name = "PRIVATE_KEY_PATH"
    else:
        return None
    _check_pem(text, name)
    return text


def _check_pem(text: str, name: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError):
        raise SettingsError(
            f"{name} is not a PEM-encoded private key (expected the .pem file GitHub gave you)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SettingsError(f"{name} must be an RSA private key (GitHub Apps sign with RS256)")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name} must be an http(s) URL such as {default}")
    return raw.rstrip("/")


def _database_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("DATABASE_URL", "").strip()
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise SettingsError("DATABASE_URL is not a URL (postgresql://user:pass@host/db)") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            "DATABASE_URL must be a postgresql:// URL (without it the inbox is SQLite "
            "under DATA_DIR)"
        )
    return raw


def load_settings(env: Mapping[str, str] | None = None, *, production: bool = False) -> Settings:
    """Read and validate settings; raise SettingsError with one line naming the bad setting.

    Credentials may be absent as a whole (then the service offers the manifest setup flow,
    unless ``production`` is set); a partial set is an error, since it is surely a mistake.
    """
    env = os.environ if env is None else env
    production = production or env.get("NODE_ENV", "") == "production"
    app_id = env.get("APP_ID", "").strip() or None
    if app_id is not None and not re.fullmatch(r"[0-9]+", app_id):
        raise SettingsError("APP_ID must be the numeric App ID shown on the GitHub App's page")
    private_key = private_key_from_env(env)
    secret = env.get("WEBHOOK_SECRET", "") or None
    given = {
        "APP_ID": app_id is not None,
        "PRIVATE_KEY": private_key is not None,
        "WEBHOOK_SECRET": secret is not None,
    }
    if any(given.values()) or production:
        for name, ok in given.items():
            if not ok:
                hint = " (or PRIVATE_KEY_PATH)" if name == "PRIVATE_KEY" else ""
                raise SettingsError(f"{name}{hint} is not set")
    log_level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if log_level not in logging.getLevelNamesMapping():
        raise SettingsError("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR")
    log_format = env.get("LOG_FORMAT", "").strip().lower() or "pretty"
    if log_format not in ("pretty", "json"):
        raise SettingsError("LOG_FORMAT must be json or pretty")
    webhook_path = env.get("WEBHOOK_PATH", "").strip() or "/api/github/webhooks"
    if not webhook_path.startswith("/"):
        raise SettingsError("WEBHOOK_PATH must start with /")
    api_url = _url(env, "GITHUB_API_URL", DEFAULT_API_URL)
    web_url = _url(env, "GITHUB_URL", web_url_for(api_url))
    host = env.get("HOST", "").strip() or "0.0.0.0"
    return Settings(
        app_id=app_id,
        private_key=private_key,
        webhook_secret=secret,
        port=_int(env, "PORT", 3000, 0, 65535),
        host=host,
        webhook_path=webhook_path,
        github_api_url=api_url,
        github_url=web_url,
        log_level=log_level,
        log_format=log_format,
        data_dir=Path(env.get("DATA_DIR", "").strip() or "data"),
        resync_interval=_float(env, "RESYNC_INTERVAL", 600.0, zero_ok=True),
        production=production,
        team_cache_ttl=_float(env, "TEAM_CACHE_TTL", 300.0),
        dashboard_debounce=_float(env, "DASHBOARD_DEBOUNCE", 15.0, zero_ok=True),
        github_timeout=_float(env, "GITHUB_TIMEOUT", 20.0),
        workers=_int(env, "WORKERS", 16, 1, 256),
        cache_max_mb=_int(env, "CACHE_MAX_MB", 1024, 0, 1024 * 1024),
        archive_max_mb=_int(env, "ARCHIVE_MAX_MB", 2048, 1, 1024 * 1024),
        database_url=_database_url(env),
        recovery_interval=_float(env, "RECOVERY_INTERVAL", 600.0, zero_ok=True),
    )


def load_dotenv(path: Path, env: dict[str, str]) -> None:
    """Fill ``env`` from a ``.env`` file (KEY=VALUE lines) without overriding what is set.

    This is how the manifest setup flow hands its credentials to the next start, as in Probot.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key and key not in env:
            env[key] = value
