"""The running service: the aiohttp app (webhook route, health, metrics), the setup page, the
worker with its dispatcher and durable inbox, logs and metrics."""
