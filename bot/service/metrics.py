"""What the service did, for Prometheus: ``prometheus-client`` writes the exposition.

The library does the escaping, the text and OpenMetrics formats (chosen from the scraper's
``Accept`` header) and the process metrics (CPU, memory, open files). Each service has a
registry of its own, so several services in one process (tests, the demo) do not mix their
counts. Values that live elsewhere (API calls counted by the GitHub client, the inbox's rows)
are read when Prometheus scrapes, by a collector, rather than copied on every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

#: Handler latency buckets in seconds.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# `*_created` series (one timestamp per label set) double every counter for no use here.
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Snapshot:
    """Values read at scrape time from where they live."""

    api_calls_by_status: Mapping[str, int] = field(default_factory=dict)
    rate_limit_remaining: Mapping[str, int] = field(default_factory=dict)
    inbox: Mapping[str, int] = field(default_factory=dict)
    in_flight: int = 0
    tokens_fetched: int = 0


class _Live(Collector):
    def __init__(self, read: Callable[[], Snapshot | None]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        snap = self.read()
        if snap is None:
            return
        calls = CounterMetricFamily(
            "fleetbot_github_api_calls",
            "GitHub API calls, by HTTP status or error.",
            labels=["status"],
        )
        for status, n in sorted(snap.api_calls_by_status.items()):
            calls.add_metric([status], n)
        yield calls
        remaining = GaugeMetricFamily(
            "fleetbot_github_rate_limit_remaining",
            "Last x-ratelimit-remaining seen.",
            labels=["identity"],
        )
        for identity, n in sorted(snap.rate_limit_remaining.items()):
            remaining.add_metric([identity], n)
        yield remaining
        inbox = GaugeMetricFamily(
            "fleetbot_inbox_deliveries", "Deliveries in the inbox, by status.", labels=["status"]
        )
        for status, n in sorted(snap.inbox.items()):
            inbox.add_metric([status], n)
        yield inbox
        yield GaugeMetricFamily(
            "fleetbot_in_flight", "Deliveries being processed now.", value=snap.in_flight
        )
        yield CounterMetricFamily(
            "fleetbot_installation_tokens_fetched",
            "Installation tokens fetched.",
            value=snap.tokens_fetched,
        )


class Metrics:
    """The service's registry and the counters the service itself increments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._deliveries = Counter(
            "fleetbot_deliveries",
            "Webhook deliveries processed, by event and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self._received = Counter(
            "fleetbot_deliveries_received",
            "Verified deliveries accepted.",
            registry=self.registry,
        )
        self._latency = Histogram(
            "fleetbot_handler_seconds",
            "Time from start of processing to outcome.",
            ["event"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._refused = Counter(
            "fleetbot_deliveries_refused",
            "Signed deliveries refused (4xx) because their body cannot be used, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self._recovery_runs = Counter(
            "fleetbot_recovery_runs",
            "Readings of GitHub's delivery log for missed deliveries, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self._recovered = Counter(
            "fleetbot_deliveries_recovered",
            "Deliveries GitHub could not hand over, taken up from its delivery log.",
            registry=self.registry,
        )
        self._checkpoint = Gauge(
            "fleetbot_recovery_checkpoint_seconds",
            "Time (epoch) up to which GitHub's delivery log has been checked.",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._snapshot: Callable[[], Snapshot | None] = lambda: None
        self.registry.register(_Live(lambda: self._snapshot()))

    def received(self) -> None:
        self._received.inc()

    def delivery(self, event: str, outcome: str, seconds: float) -> None:
        self._deliveries.labels(event, outcome).inc()
        self._latency.labels(event).observe(seconds)

    def refused(self, reason: str) -> None:
        self._refused.labels(reason).inc()

    def recovery_run(self, outcome: str, *, taken: int = 0, checked_until: float = 0.0) -> None:
        self._recovery_runs.labels(outcome).inc()
        self._recovered.inc(taken)
        if checked_until:
            self._checkpoint.set(checked_until)

    def read_live(self, snapshot: Callable[[], Snapshot | None]) -> None:
        """Where the scrape-time values come from (set once the service has started)."""
        self._snapshot = snapshot

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type for a scraper that sent ``accept`` (OpenMetrics when it
        asks for it, Prometheus text otherwise)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
