"""Smoke tests: each benchmark runs from the repository root with tiny sizes, prints its table
and writes its JSON (the figures themselves are measured by running the scripts, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import common

ROOT = Path(__file__).resolve().parents[2]


def run(module: str, *args: str, results: Path) -> tuple[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    name = module.rsplit(".", 1)[1]
    data = json.loads((results / f"{name}.json").read_text())
    assert data["machine"]["nproc"] >= 1 and data["machine"]["python"]
    return done.stdout, data


def test_ack_prints_the_service_beside_the_floor(tmp_path: Path) -> None:
    out, data = run(
        "bench.ack", "--deliveries", "40", "--concurrency", "4", "--warmup", "4", results=tmp_path
    )
    assert "p99/floor" in out and "service, handled (stored)" in out
    targets = data["targets"]
    assert set(targets) == {"floor", "service, handled (stored)", "service, ignored"}
    for figures in targets.values():
        assert figures["n"] == 40
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        assert figures["statuses"] == {"202": 40}


def test_e2e_counts_calls_and_round_trips_per_story(tmp_path: Path) -> None:
    out, data = run("bench.e2e", "--latency", "0.005", "--dev-clusters", "2", results=tmp_path)
    assert "warm bump calls" in out and "warm review calls" in out
    assert data["changed_files"] == 2
    for cache in ("cold", "warm"):
        bump = data["bump"][cache]
        opened, merged = bump["pr_opened"], bump["merged"]
        assert 0 < opened["round_trips"] <= opened["calls"] <= merged["calls"] <= bump["calls"]
        assert opened["ms"] >= 5 * opened["round_trips"]  # each round trip waited 5 ms
        assert bump["by_route"]["POST /repos/{repo}/pulls"] == 1
        review = data["review"][cache]
        assert review["check_updated"]["round_trips"] >= 1
    assert data["bump"]["cold"]["calls"] > data["bump"]["warm"]["calls"]
    assert data["failed_deliveries"] == []


def test_fleet_runs_cold_restart_warm_and_the_dashboards_first_refresh(tmp_path: Path) -> None:
    args = ("--clusters", "6", "12", "--tenants", "2", "--tree-limit", "12", "--latency", "0.002")
    out, data = run("bench.fleet", *args, results=tmp_path)
    assert "peak RSS" in out and "warm bump calls by size" in out and "restart bump" in out
    sizes = data["sizes"]
    assert [s["clusters"] for s in sizes] == [6, 12]
    for s in sizes:
        assert s["merged_bumps"] == 3 and s["failed_deliveries"] == []
        phases = s["phases"]
        cold, restart = phases["cold"]["cold"], phases["restart"]["restart"]
        warm, board = phases["restart"]["warm"], phases["dashboard"]["dashboard"]
        # the trees exceed the 12-entry listing limit: the cold start read the archive
        assert cold["archives"] == 1 and cold["blobs"] == 0
        assert "GET /repos/{repo}/git/trees/{sha}" not in cold["by_route"]
        # the restarted process found everything on disk
        assert restart["archives"] == 0 and restart["blobs"] == 0
        assert warm["calls"] < cold["calls"]
        assert board["archives"] == 1 and phases["dashboard"]["dashboard_state"]["complete"]
        assert s["peak_rss_mb"] > 0 and s["object_cache_mb"] > 0
    # the second bump of the restarted process: the warm one, in the same calls at both sizes
    assert len({s["phases"]["restart"]["warm"]["in_deliveries"] for s in sizes}) == 1


def test_the_critical_path_counts_calls_that_waited_for_each_other() -> None:
    def call(start: float, end: float) -> common.Call:
        return common.Call("GET", "/x", "", 200, "installation:1", start, end - start)

    # two in parallel, then one after both, then one overlapping it
    calls = [call(0, 1), call(0.1, 0.9), call(1.0, 2.0), call(1.5, 2.5), call(2.6, 3)]
    assert common.longest_chain(calls) == 3
    assert common.longest_chain([]) == 0


def test_routes_name_calls_without_their_shas_and_numbers() -> None:
    sha = "a" * 40
    tree = common.Call("GET", f"/repos/acme/fleet/git/trees/{sha}", "", 200, "app:1", 0, 0)
    merge = common.Call("PUT", "/repos/acme/fleet/pulls/12/merge", "", 200, "app:1", 0, 0)
    ref = common.Call("GET", "/repos/acme/fleet/git/ref/heads/fleet-bot/bump/x", "", 200, "", 0, 0)
    assert tree.route == "GET /repos/{repo}/git/trees/{sha}"
    assert merge.route == "PUT /repos/{repo}/pulls/{n}/merge"
    assert ref.route == "GET /repos/{repo}/git/ref/heads/{branch}"
    assert not ref.by_bot and tree.by_bot
    compare = common.Call("GET", f"/repos/a/b/compare/{sha}...{'b' * 40}", "", 200, "", 0, 0)
    assert compare.route == "GET /repos/{repo}/compare/{sha}...{sha}"


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert common.percentile(values, 50) == 50.5
    assert common.percentile(values, 99) == 99.01
    assert common.percentile([3.0], 99) == 3.0


def test_fleet_ablations_switch_parts_off(tmp_path: Path) -> None:
    args = (
        "--clusters",
        "4",
        "--tenants",
        "2",
        "--without",
        "dashboard",
        "--without",
        "fleet-check",
        "--latency",
        "0.002",
    )
    out, data = run("bench.fleet", *args, results=tmp_path)
    assert "switched off: dashboard, fleet-check" in out
    (size,) = data["sizes"]
    assert size["without"] == ["dashboard", "fleet-check"]
    phases = size["phases"]
    assert "dashboard" not in phases  # nor its phase
    for story in (phases["cold"]["cold"], phases["restart"]["restart"], phases["restart"]["warm"]):
        assert story["deferred"] == 0  # no dashboard refresh after the merge
        routes = story["by_route"]
        # the gate still lists the bot's issues (its /freeze issues); nothing writes one
        assert "POST /repos/{repo}/issues" not in routes
        assert "PATCH /repos/{repo}/issues/{n}" not in routes
    assert size["merged_bumps"] == 3
