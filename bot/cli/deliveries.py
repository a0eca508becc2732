"""``python -m bot deliveries`` and ``redeliver``: the inbox as an operator sees it."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bot.service import logs
from bot.service.app import STATE, _cleanup, _startup, create_app
from bot.service.storage import opened
from bot.settings import Settings


def _where(settings: Settings) -> object:
    return "DATABASE_URL" if settings.database_url else settings.data_dir / "inbox.sqlite3"


def list_deliveries(settings: Settings, *, limit: int) -> int:
    """The recent deliveries with status, attempts, API calls and the last error."""

    async def read() -> list[Any]:
        async with opened(settings) as store:
            return await store.recent(limit)

    rows = asyncio.run(read())
    if not rows:
        print("no deliveries recorded in", _where(settings))
        return 0
    print(
        f"{'received (UTC)':<20} {'delivery':<38} {'event':<28} {'status':<8} {'tries':>5} "
        f"{'calls':>5}  repo / last error"
    )
    for d in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(d.received_at))
        name = d.event + (f".{d.action}" if d.action else "")
        tail = d.repo or "-"
        if d.last_error:
            tail += f"  ({d.last_error[:120]})"
        print(
            f"{when:<20} {d.id:<38} {name[:28]:<28} {d.status:<8} {d.attempts:>5} "
            f"{d.api_calls if d.api_calls is not None else '-':>5}  {tail}"
        )
    return 0


def redeliver(settings: Settings, delivery_id: str) -> int:
    """Run a recorded delivery again, in this process, with the service's settings."""
    logs.configure(settings.log_level, settings.log_format, settings.secrets())

    async def requeue() -> bool:
        async with opened(settings) as store:
            if await store.get(delivery_id) is None:
                return False
            return await store.requeue(delivery_id)

    if not asyncio.run(requeue()):
        print(f"error: no delivery {delivery_id} in {_where(settings)}", file=sys.stderr)
        return 2

    async def run() -> str:
        app = create_app(settings, background=[])
        state = app[STATE]
        state.recover = False
        await _startup(app)
        assert state.worker is not None and state.store is not None
        await state.worker.idle()
        delivery = await state.store.get(delivery_id)
        await _cleanup(app)
        return delivery.status if delivery else "unknown"

    status = asyncio.run(run())
    print(f"delivery {delivery_id}: {status}")
    return 0 if status == "done" else 1
