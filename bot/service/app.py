"""The aiohttp application: verify, record, acknowledge; the work happens in the background."""

from __future__ import annotations

import hmac
import json
import logging
import time
from hashlib import sha256
from urllib.parse import parse_qs

from aiohttp import web
from gidgethub import routing, sansio

from bot import handlers
from bot.service import metrics as metrics_mod
from bot.service.dispatch import describe
from bot.service.inbox import Incoming
from bot.service.store import StoreUnavailable
from bot.service.worker import BotState, Worker
from bot.settings import Settings

log = logging.getLogger(__name__)

#: SIGTERM: how long in-flight deliveries may take to finish (the rest stay in the inbox).
DRAIN_SECONDS = 25.0
#: GitHub caps payloads at 25 MB; aiohttp's default limit of 1 MB would refuse real deliveries.
WEBHOOK_BODY_LIMIT = 25 * 1024 * 1024

STATE = web.AppKey("state", BotState)


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of ``X-Hub-Signature-256`` (before anything is parsed)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, sha256).hexdigest()
    return hmac.compare_digest(header.encode("ascii", "replace"), expected.encode("ascii"))


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _decode(content_type: str, body: bytes) -> object:
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(body.decode("utf-8"))
        return json.loads(form["payload"][0])
    return json.loads(body)


def _refuse(state: BotState, delivery_id: str, reason: str, message: str) -> web.Response:
    """A signed delivery whose body cannot be used: 400 with what is wrong, counted and logged
    with its id; nothing is recorded or processed."""
    state.metrics.refused(reason)
    log.warning("refused delivery %s: %s", delivery_id or "(no id)", message)
    return _json_error(400, message)


async def webhook(request: web.Request) -> web.Response:
    state = request.app[STATE]
    store = state.store
    if not state.accepting or state.dispatcher is None or store is None:
        # Shutting down (or not started): GitHub records the failure; the delivery can be
        # redelivered, and the other replica behind the load balancer takes new ones.
        return _json_error(503, "shutting down")
    if store.problem is not None:
        # Nothing can be stored: never acknowledge it. GitHub records the failure and the
        # delivery recovery (of whichever replica gets its database back first) takes it up.
        return _json_error(503, f"database unavailable: {store.problem}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _json_error(413, "payload larger than GitHub's 25 MB cap")
    secret = state.settings.webhook_secret or ""
    if not verify_signature(body, request.headers.get("X-Hub-Signature-256"), secret):
        log.warning("rejected a delivery with a missing or wrong signature")
        return _json_error(401, "missing or invalid X-Hub-Signature-256")
    event_name = request.headers.get("X-GitHub-Event", "")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    if not event_name or not delivery_id or len(delivery_id) > 200:
        return _json_error(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        data = _decode(request.content_type, body)
    except RecursionError:
        return _refuse(
            state, delivery_id, "too deep", "body is JSON nested too deeply for a webhook payload"
        )
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return _refuse(state, delivery_id, "not json", "body is not a JSON webhook payload")
    if event_name == "ping":
        return web.json_response({"msg": "pong"})
    if not isinstance(data, dict):
        return _refuse(state, delivery_id, "not an object", "payload must be a JSON object")
    if not isinstance(data.get("action", ""), str):
        return _refuse(state, delivery_id, "bad action", "action must be a string")
    event = sansio.Event(data, event=event_name, delivery_id=delivery_id)
    if not state.router.fetch(event):
        return web.json_response({"status": "ignored"}, status=202)
    action, repo, inst = describe(data)
    if not state.dispatcher.accepting:
        return _json_error(503, "shutting down")
    try:
        added = await store.add(Incoming(delivery_id, event_name, action, repo, inst, body))
    except StoreUnavailable as exc:
        log.warning("could not record delivery %s: %s", delivery_id, exc)
        return _json_error(503, f"database unavailable: {exc}")
    if added:
        state.metrics.received()
        state.dispatcher.arrived()
        assert state.worker is not None
        state.worker.submit(delivery_id, data)
        return web.json_response({"status": "queued"}, status=202)
    return web.json_response({"status": "duplicate"}, status=202)


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    problem = state.store.problem if state.store is not None else None
    if state.ready and state.accepting and problem is None:
        return web.json_response({"status": "ok"})
    if state.ready and state.accepting:
        return web.json_response({"status": "database unavailable", "reason": problem}, status=503)
    return web.json_response({"status": "starting" if not state.ready else "stopping"}, status=503)


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.services is None or state.store is None:
        return web.Response(status=503, text="not ready\n")
    try:  # the collector reads synchronously: fetch the inbox's counts first
        state.inbox_counts = await state.store.counts()
    except StoreUnavailable:
        state.inbox_counts = {}
    body, content_type = state.metrics.exposition(request.headers.get("Accept"))
    return web.Response(
        body=body,
        headers={"Content-Type": content_type, "X-Content-Type-Options": "nosniff"},
    )


def _live(state: BotState) -> metrics_mod.Snapshot | None:
    services = state.services
    if services is None:
        return None
    return metrics_mod.Snapshot(
        api_calls_by_status=services.stats.by_status,
        rate_limit_remaining=services.stats.rate_limit_remaining,
        inbox=state.inbox_counts,
        in_flight=state.dispatcher.in_flight if state.dispatcher else 0,
        tokens_fetched=services.auth.tokens_fetched,
    )


async def _startup(app: web.Application) -> None:
    state = app[STATE]
    state.worker = Worker(state)
    await state.worker.start()
    state.ready = True


async def _shutdown(app: web.Application) -> None:
    """SIGTERM: stop taking deliveries, finish what is in flight, then let the process exit."""
    state = app[STATE]
    state.accepting = False
    started = time.monotonic()
    if state.worker is not None:
        finished = await state.worker.stop(grace=DRAIN_SECONDS)
        state.worker = None
        log.info(
            "stopped after %.1fs; %s",
            time.monotonic() - started,
            "all in-flight work finished" if finished else "unfinished work stays in the inbox",
        )


async def _cleanup(app: web.Application) -> None:
    state = app[STATE]
    if state.worker is not None:  # cleanup without a shutdown (tests, errors at start)
        await state.worker.stop(grace=5.0)
        state.worker = None


def create_app(
    settings: Settings,
    *,
    router: routing.Router | None = None,
    fanout_events: frozenset[str] | None = None,
    background: list[handlers.BackgroundJob] | None = None,
) -> web.Application:
    """The service; handlers default to the product's full set of routers."""
    router = router if router is not None else handlers.router
    fanout_events = fanout_events if fanout_events is not None else handlers.FANOUT_EVENTS
    background = background if background is not None else list(handlers.BACKGROUND)
    app = web.Application(client_max_size=WEBHOOK_BODY_LIMIT)
    state = BotState(
        settings=settings,
        router=router,
        fanout_events=fanout_events,
        background=background,
    )
    state.metrics.read_live(lambda: _live(state))
    app[STATE] = state
    app.router.add_post(settings.webhook_path, webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(_startup)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)
    return app
