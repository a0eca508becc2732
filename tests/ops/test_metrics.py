"""``GET /metrics`` after real deliveries, parsed line by line as Prometheus would."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bot.fake import FakeGitHub
from bot.service.metrics import Metrics
from tests.harness import FLEET, Harness, start_bot
from tests.ops.conftest import gate_checks, open_staging_promotion, seed_with_manifest

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
VALUE = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|NaN)"
SAMPLE_RE = re.compile(
    rf"(?P<name>{NAME})(?:\{{(?P<labels>(?:{LABEL})(?:,{LABEL})*)?,?\}})? (?P<value>{VALUE})"
    r"(?: -?\d+)?"
)
HELP_RE = re.compile(rf"# HELP (?P<name>{NAME}) .*")
TYPE_RE = re.compile(rf"# TYPE (?P<name>{NAME}) (?P<type>counter|gauge|histogram|summary|untyped)")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}

Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    type: str
    help: bool = False
    samples: dict[tuple[str, Labels], float] = field(default_factory=dict)


def parse_exposition(text: str) -> dict[str, Family]:
    """Strictly parse the text format: every line valid, TYPE before samples, families
    contiguous, no sample twice; fails the test on the first bad line."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families: dict[str, Family] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP "):
            match = HELP_RE.fullmatch(line)
            assert match, where
            families.setdefault(match["name"], Family("untyped")).help = True
            continue
        if line.startswith("# TYPE "):
            match = TYPE_RE.fullmatch(line)
            assert match, where
            name = match["name"]
            assert name not in families or not families[name].samples, f"late TYPE, {where}"
            families.setdefault(name, Family(match["type"])).type = match["type"]
            current = name
            continue
        assert not line.startswith("#") and line.strip(), f"unexpected {where}"
        match = SAMPLE_RE.fullmatch(line)
        assert match, f"not a sample, {where}"
        family = _family_of(match["name"], families)
        assert family == current, f"sample outside its family's block, {where}"
        labels = tuple(
            re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', match["labels"] or "")
        )
        key = (match["name"], labels)
        assert key not in families[family].samples, f"duplicate sample, {where}"
        value = match["value"]
        families[family].samples[key] = float(value.replace("Inf", "inf"))
    return families


def _family_of(sample: str, families: dict[str, Family]) -> str:
    if sample in families:
        return sample
    for name, family in families.items():
        if any(sample == name + s for s in SUFFIXES.get(family.type, ())):
            return name
    raise AssertionError(f"{sample} has no # TYPE")


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    wanted = tuple(sorted(labels.items()))
    for fam in families.values():
        for (sample, sample_labels), v in fam.samples.items():
            if sample == name and tuple(sorted(sample_labels)) == wanted:
                return v
    raise AssertionError(f"no sample {name}{labels}")


def check_histogram(family: Family, base: str) -> int:
    """Buckets cumulative and ordered, +Inf equal to _count, per label set; returns sets seen."""
    series: dict[Labels, list[tuple[float, float]]] = {}
    for (sample, labels), v in family.samples.items():
        if sample == base + "_bucket":
            rest = tuple(kv for kv in labels if kv[0] != "le")
            le = float(dict(labels)["le"].replace("Inf", "inf"))
            series.setdefault(rest, []).append((le, v))
    for rest, buckets in series.items():
        bounds = [le for le, _ in buckets]
        assert bounds == sorted(bounds) and math.isinf(bounds[-1])
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"buckets not cumulative for {rest}"
        assert counts[-1] == family.samples[(base + "_count", rest)]
        assert family.samples[(base + "_sum", rest)] >= 0
    return len(series)


@pytest.fixture
async def service(fake: FakeGitHub, tmp_path: Path) -> AsyncIterator[Harness]:
    app = seed_with_manifest(fake)
    bot_app, runner, url = await start_bot(fake, app.private_key_pem, app.id, tmp_path)
    fake.set_webhook_url(app, f"{url}/api/github/webhooks")
    harness = Harness(
        fake=fake, bot_url=url, runner=runner, app=bot_app, tmp=tmp_path, app_id=app.id
    )
    await harness.settle()
    try:
        yield harness
    finally:
        await runner.cleanup()


async def scrape(url: str) -> tuple[str, str]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        return resp.headers["Content-Type"], await resp.text()


async def test_metrics_after_real_deliveries_parse_and_count_them(service: Harness) -> None:
    number = open_staging_promotion(service.fake)
    await service.settle()
    assert gate_checks(service.fake, number)["promotion/lineage"] == "success"
    inst = next(iter(service.fake.world.state.installations.values())).id
    broken = {"action": "opened", "repository": {"full_name": FLEET}, "installation": {"id": inst}}
    assert (await service.send("pull_request", broken))[0] == 202
    assert (await service.send("ping", {"zen": "x"}))[0] == 200
    assert (await service.send("ping", {"zen": "x"}, secret="wrong"))[0] == 401
    await service.settle()

    content_type, text = await scrape(service.bot_url)
    assert content_type.startswith("text/plain")
    families = parse_exposition(text)
    for name in (
        "fleetbot_deliveries_total",
        "fleetbot_deliveries_received_total",
        "fleetbot_github_api_calls_total",
    ):
        assert families[name].type == "counter" and families[name].help
        assert all(v >= 0 for v in families[name].samples.values())

    processed = {
        dict(labels)["event"]: v
        for (_, labels), v in families["fleetbot_deliveries_total"].samples.items()
        if dict(labels)["outcome"] == "done"
    }
    assert processed["pull_request"] >= 1 and processed["push"] >= 1
    assert value(families, "fleetbot_deliveries_total", event="pull_request", outcome="failed") == 1
    received = value(families, "fleetbot_deliveries_received_total")
    assert received == sum(families["fleetbot_deliveries_total"].samples.values())
    assert service.state.inbox is not None
    assert received == len(service.state.inbox.recent(1000))  # pings and rejects are not counted

    latency = families["fleetbot_handler_seconds"]
    assert latency.type == "histogram"
    assert check_histogram(latency, "fleetbot_handler_seconds") == len(
        {dict(labels)["event"] for (_, labels) in families["fleetbot_deliveries_total"].samples}
    )
    # opened, review_requested (the bot asks for the empty approval slots) and the broken one
    assert value(families, "fleetbot_handler_seconds_count", event="pull_request") == 3

    calls = {
        dict(labels)["status"]: v
        for (_, labels), v in families["fleetbot_github_api_calls_total"].samples.items()
    }
    assert calls["200"] > 0 and calls.get("201", 0) > 0  # reads, and the check runs created
    assert sum(calls.values()) == len(service.bot_requests())  # as the fake GitHub counted them
    remaining = families["fleetbot_github_rate_limit_remaining"]
    assert remaining.type == "gauge" and remaining.samples
    assert all(0 <= v <= 5000 for v in remaining.samples.values())
    assert value(families, "fleetbot_inbox_deliveries", status="done") >= 2
    assert value(families, "fleetbot_in_flight") == 0


async def test_metrics_before_any_delivery_are_valid_and_empty(service: Harness) -> None:
    _, text = await scrape(service.bot_url)
    families = parse_exposition(text)
    assert value(families, "fleetbot_deliveries_received_total") >= 0
    assert families["fleetbot_handler_seconds"].type == "histogram"


def test_the_parser_rejects_what_prometheus_rejects() -> None:
    good = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n'
    assert parse_exposition(good)["a_total"].samples == {("a_total", (("x", "1"),)): 3.0}
    for bad in (
        "a_total 3\n",  # no TYPE
        "# TYPE a_total counter\na_total{x=1} 3\n",  # unquoted label
        "# TYPE a_total counter\na_total three\n",  # not a number
        "# TYPE a_total counter\na_total 3\na_total 4\n",  # duplicate
        "# TYPE a counter\n# TYPE b counter\na 1\n",  # outside its block
        "# TYPE a_total counter\na_total 3",  # no final newline
    ):
        with pytest.raises(AssertionError):
            parse_exposition(bad)


async def test_openmetrics_when_the_scraper_asks_and_process_metrics_always(
    service: Harness,
) -> None:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{service.bot_url}/metrics", headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
    assert text.endswith("# EOF\n")
    assert "# TYPE fleetbot_deliveries_received counter" in text  # OpenMetrics names families
    _, plain = await scrape(service.bot_url)
    families = parse_exposition(plain)
    assert value(families, "process_resident_memory_bytes") > 0
    assert value(families, "process_cpu_seconds_total") >= 0


def test_label_values_are_escaped_as_prometheus_reads_them() -> None:
    metrics = Metrics()
    odd = 'we"ird\\event\nname'
    metrics.delivery(odd, "done", 0.2)
    body, content_type = metrics.exposition(None)
    assert content_type.startswith("text/plain")
    families = parse_exposition(body.decode())
    assert (
        value(
            families, "fleetbot_deliveries_total", event='we\\"ird\\\\event\\nname', outcome="done"
        )
        == 1
    )
