"""Unit tests of the service shell's small parts: signatures, tokens, inbox, locks, redaction."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
from hashlib import sha256
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.concurrency.locks import KeyedLocks
from bot.github.auth import REFRESH_MARGIN, AppAuth
from bot.handlers import schemas
from bot.handlers.payload import PayloadError, field
from bot.service.app import verify_signature
from bot.service.inbox import Inbox, Incoming
from bot.service.logs import Redactor


def test_signature_vector_from_githubs_docs() -> None:
    # docs: validating-webhook-deliveries.md
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify_signature(b"Hello, World!", sig, "It's a Secret to Everybody")
    assert not verify_signature(b"Hello, World!", sig, "another secret")
    assert not verify_signature(b"Hello, World!", None, "It's a Secret to Everybody")
    assert not verify_signature(b"Hello, World!", sig.replace("sha256=", "sha1="), "x")
    assert not verify_signature(b"Hello, World!", "sha256=\u00e9", "x")


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


def test_jwt_is_rs256_with_issuer_and_short_life(key_pair: tuple[str, Any]) -> None:
    pem, public = key_pair
    now = [1_000_000.0]
    auth = AppAuth("77", pem, clock=lambda: now[0])
    token = auth.jwt()
    claims = pyjwt.decode(token, public, algorithms=["RS256"], options={"verify_exp": False})
    assert claims["iss"] == "77"
    assert claims["exp"] - claims["iat"] <= 600
    assert auth.jwt() == token  # reused while fresh


async def test_installation_token_cached_until_near_expiry(key_pair: tuple[str, Any]) -> None:
    pem, _ = key_pair
    now = [1_700_000_000.0]
    auth = AppAuth("77", pem, clock=lambda: now[0])
    fetched: list[int] = []

    async def fetch(inst: int, _jwt: str) -> dict[str, Any]:
        fetched.append(inst)
        expires = dt.datetime.fromtimestamp(now[0] + 3600, dt.UTC)
        iso = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": f"ghs_{len(fetched):040d}", "expires_at": iso}

    first = await auth.token(5, fetch)
    assert await auth.token(5, fetch) == first
    now[0] += 3600 - REFRESH_MARGIN - 1
    assert await auth.token(5, fetch) == first
    now[0] += 2  # inside the refresh margin
    second = await auth.token(5, fetch)
    assert second != first
    assert fetched == [5, 5]
    # concurrent callers share one fetch
    auth.forget(5)
    results = await asyncio.gather(*(auth.token(5, fetch) for _ in range(10)))
    assert len(set(results)) == 1 and len(fetched) == 3


def test_inbox_records_and_resumes(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    assert inbox.add(Incoming("d1", "push", None, "acme/fleet", 1, b"{}"))
    assert not inbox.add(Incoming("d1", "push", None, "acme/fleet", 1, b"{}"))  # duplicate
    started = inbox.start("d1")
    assert started is not None and started.attempts == 1 and started.status == "running"
    inbox.close()
    again = Inbox(tmp_path / "inbox.sqlite3")  # a restart
    assert [d.id for d in again.unfinished()] == ["d1"]
    again.mark_failed("d1", "GitHub answered 404")
    assert again.unfinished() == []
    assert again.add(
        Incoming("d1", "push", None, "acme/fleet", 1, b"{}")
    )  # redelivery of a failure
    got = again.get("d1")
    assert got is not None and got.status == "queued" and got.last_error == "GitHub answered 404"
    again.mark_done("d1", duration=0.1, api_calls=3)
    assert again.counts() == {"done": 1}
    assert again._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_inbox_close_waits_for_a_checkpoint_running_in_its_thread(tmp_path: Path) -> None:
    """Stopping cancels the checkpoint task, but its thread runs on: closing the connection
    under it crashed the process (a segfault in libsqlite3)."""
    import threading

    inbox = Inbox(tmp_path / "inbox.sqlite3")
    inbox.add(Incoming("d1", "push", None, "acme/fleet", 1, b"{}"))
    inside, release = threading.Event(), threading.Event()
    events: list[str] = []

    class SlowConnection:
        def execute(self, sql: str) -> Any:
            inside.set()
            release.wait(5)
            events.append("checkpointed")
            return self

        def fetchone(self) -> tuple[int, int, int]:
            return (0, 4, 4)

        def close(self) -> None:
            events.append("closed")

    inbox._checkpointer = SlowConnection()  # type: ignore[assignment]
    worker = threading.Thread(target=inbox.checkpoint)
    worker.start()
    assert inside.wait(5)
    closer = threading.Thread(target=inbox.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # waiting for the checkpoint, not closing under it
    release.set()
    worker.join(5)
    closer.join(5)
    assert events == ["checkpointed", "closed"]
    assert inbox.checkpoint() == 0  # after close: nothing, and no new connection
    assert inbox._checkpointer is None


async def test_keyed_locks_serialise_per_key_and_reenter() -> None:
    locks = KeyedLocks()
    active: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}
    both = 0
    both_peak = 0

    async def work(key: str) -> None:
        nonlocal both, both_peak
        async with locks.hold(key), locks.hold(key):  # re-entrant in the same task
            active[key] += 1
            both += 1
            peak[key] = max(peak[key], active[key])
            both_peak = max(both_peak, both)
            await asyncio.sleep(0.001)
            active[key] -= 1
            both -= 1

    await asyncio.gather(*(work("a" if i % 2 else "b") for i in range(20)))
    assert peak == {"a": 1, "b": 1}
    assert both_peak == 2  # different keys do run in parallel
    assert locks.max_holders_seen == 1
    assert locks._entries == {}


def test_redactor_hides_secrets_tokens_and_keys() -> None:
    r = Redactor(["webhook-secret-value"])
    text = (
        "secret webhook-secret-value token ghs_abcdefghijklmnopqrstuvwxyz0123456789 "
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- "
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"
    )
    out = r.redact(text)
    assert "webhook-secret-value" not in out
    assert "ghs_" not in out and "MIIE" not in out and "eyJhbGci" not in out
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "t=%s", ("ghp_" + "a" * 36,), None)
    r.filter(record)
    assert "ghp_" not in record.getMessage()


def test_payload_field_errors_are_plain() -> None:
    data = {"pull_request": {"number": 3, "draft": False, "head": {"sha": 5}}}
    assert field(data, "pull_request.number", int) == 3
    assert field(data, "pull_request.title", str, None) is None
    with pytest.raises(PayloadError, match=r"^pull_request.head.sha should be str, not int$"):
        field(data, "pull_request.head.sha", str)
    with pytest.raises(PayloadError, match=r"^pull_request.base.ref is missing$"):
        field(data, "pull_request.base.ref", str)
    with pytest.raises(PayloadError, match="number"):
        field({"n": True}, "n", int)


def test_payload_fields_naming_a_commit_must_be_a_sha() -> None:
    """A push whose ``after`` is no SHA (a fuzzer found it) is malformed: the bot would put it
    in a URL (GET /git/trees/ with nothing after it)."""
    repo = {"full_name": "acme/fleet"}
    schemas.check("push", {"repository": repo, "ref": "refs/heads/main", "after": "a" * 40})
    with pytest.raises(PayloadError, match=r"^after should be a commit SHA \(40 hex digits\), "):
        schemas.check("push", {"repository": repo, "ref": "refs/heads/main", "after": ""})
    with pytest.raises(PayloadError, match=r"^sha should be a commit SHA"):
        schemas.check("status", {"repository": repo, "sha": "main", "state": "success"})


def test_hmac_helper_matches_stdlib() -> None:
    body = b'{"zen": "Keep it logically awesome."}'
    sig = "sha256=" + hmac.new(b"k", body, sha256).hexdigest()
    assert verify_signature(body, sig, "k")
