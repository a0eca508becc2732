"""Prometheus text exposition of what the service did, with no client library needed."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping

#: Handler latency buckets in seconds.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1


class Metrics:
    def __init__(self) -> None:
        self.deliveries: Counter[tuple[str, str]] = Counter()
        self.latency: dict[str, Histogram] = {}
        self.received = 0
        #: Signed deliveries answered 4xx because their body could not be used, by reason.
        self.refused: Counter[str] = Counter()
        #: Delivery recovery from GitHub's log: rounds by outcome, deliveries taken up.
        self.recovery_runs: Counter[str] = Counter()
        self.recovered = 0
        self.recovery_checkpoint = 0.0

    def delivery(self, event: str, outcome: str, seconds: float) -> None:
        self.deliveries[(event, outcome)] += 1
        self.latency.setdefault(event, Histogram()).observe(seconds)


def service_lines(metrics: Metrics) -> list[str]:
    """Refused deliveries and the delivery recovery."""
    out = [
        "# HELP fleetbot_deliveries_refused_total Signed deliveries refused (4xx), by reason.",
        "# TYPE fleetbot_deliveries_refused_total counter",
    ]
    for reason, n in sorted(metrics.refused.items()):
        out.append(f'fleetbot_deliveries_refused_total{{reason="{_label(reason)}"}} {n}')
    out += [
        "# HELP fleetbot_recovery_runs_total Readings of GitHub's delivery log, by outcome.",
        "# TYPE fleetbot_recovery_runs_total counter",
    ]
    for outcome, n in sorted(metrics.recovery_runs.items()):
        out.append(f'fleetbot_recovery_runs_total{{outcome="{_label(outcome)}"}} {n}')
    out += [
        "# HELP fleetbot_deliveries_recovered_total Missed deliveries taken up from GitHub's log.",
        "# TYPE fleetbot_deliveries_recovered_total counter",
        f"fleetbot_deliveries_recovered_total {metrics.recovered}",
        "# HELP fleetbot_recovery_checkpoint_seconds Time (epoch) up to which GitHub's delivery"
        " log has been checked.",
        "# TYPE fleetbot_recovery_checkpoint_seconds gauge",
        f"fleetbot_recovery_checkpoint_seconds {metrics.recovery_checkpoint:.0f}",
    ]
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    metrics: Metrics,
    api_by_status: Mapping[str, int],
    rate_limit_remaining: Mapping[str, int],
    inbox_counts: Mapping[str, int],
    extra: Iterable[str] = (),
) -> str:
    out: list[str] = []
    out.append(
        "# HELP fleetbot_deliveries_total Webhook deliveries processed, by event and outcome."
    )
    out.append("# TYPE fleetbot_deliveries_total counter")
    for (event, outcome), n in sorted(metrics.deliveries.items()):
        out.append(
            f'fleetbot_deliveries_total{{event="{_label(event)}",outcome="{_label(outcome)}"}} {n}'
        )
    out.append("# HELP fleetbot_deliveries_received_total Verified deliveries accepted.")
    out.append("# TYPE fleetbot_deliveries_received_total counter")
    out.append(f"fleetbot_deliveries_received_total {metrics.received}")
    out.append("# HELP fleetbot_handler_seconds Time from start of processing to outcome.")
    out.append("# TYPE fleetbot_handler_seconds histogram")
    for event, hist in sorted(metrics.latency.items()):
        cumulative = 0
        for bound, count in zip(hist.buckets, hist.counts, strict=False):
            cumulative += count
            labels = f'event="{_label(event)}",le="{bound}"'
            out.append(f"fleetbot_handler_seconds_bucket{{{labels}}} {cumulative}")
        out.append(f'fleetbot_handler_seconds_bucket{{event="{_label(event)}",le="+Inf"}} {hist.n}')
        out.append(f'fleetbot_handler_seconds_sum{{event="{_label(event)}"}} {hist.total:.6f}')
        out.append(f'fleetbot_handler_seconds_count{{event="{_label(event)}"}} {hist.n}')
    out.append("# HELP fleetbot_github_api_calls_total GitHub API calls, by HTTP status or error.")
    out.append("# TYPE fleetbot_github_api_calls_total counter")
    for status, n in sorted(api_by_status.items()):
        out.append(f'fleetbot_github_api_calls_total{{status="{_label(status)}"}} {n}')
    out.append("# HELP fleetbot_github_rate_limit_remaining Last x-ratelimit-remaining seen.")
    out.append("# TYPE fleetbot_github_rate_limit_remaining gauge")
    for key, n in sorted(rate_limit_remaining.items()):
        out.append(f'fleetbot_github_rate_limit_remaining{{identity="{_label(key)}"}} {n}')
    out.append("# HELP fleetbot_inbox_deliveries Deliveries in the inbox, by status.")
    out.append("# TYPE fleetbot_inbox_deliveries gauge")
    for status, n in sorted(inbox_counts.items()):
        out.append(f'fleetbot_inbox_deliveries{{status="{_label(status)}"}} {n}')
    out.extend(extra)
    return "\n".join(out) + "\n"
