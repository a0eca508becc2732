"""The promotion dashboard and ``/status``: where each tenant's image runs, what waits (pure).

A matrix of tenants x environments with the tag per cluster, the tags waiting to be promoted
(an environment behind its upstream), the open promotion PRs with their gate state, and drift
(clusters of one environment that disagree). `bot.texts.dashboard` renders it as the body of
one issue per fleet repo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.fleet.layout import Fleet
from bot.fleet.policy import Policy

TITLE = "Promotion dashboard"
MAX_BODY = 60_000
MAX_ROWS = 300


@dataclass(frozen=True)
class Cell:
    cluster: str
    image: str | None  # None: no image value
    problem: str | None = None  # the file cannot be read


@dataclass(frozen=True)
class Row:
    tenant: str
    cells: Mapping[str, tuple[Cell, ...]]  # environment -> one cell per cluster that has it


@dataclass(frozen=True)
class Waiting:
    tenant: str
    environment: str
    upstream: str
    upstream_image: str
    current: tuple[str, ...]


@dataclass(frozen=True)
class Drift:
    tenant: str
    environment: str
    images: Mapping[str, str | None]  # cluster -> image


@dataclass(frozen=True)
class OpenPromotion:
    number: int
    title: str
    url: str
    lineage: str
    approvals: str
    window: str = "missing"


def matrix(
    fleet: Fleet, policy: Policy, images: Mapping[str, tuple[str | None, str | None]]
) -> list[Row]:
    """Rows of tenants; ``images`` maps an input file's path to (image, problem), and a path
    missing from it is shown as not read yet."""
    rows: list[Row] = []
    for tenant in fleet.tenants():
        cells: dict[str, tuple[Cell, ...]] = {}
        for env in policy.environments:
            here: list[Cell] = []
            for cluster in fleet.clusters_of(env.name):
                path = fleet.input_path(cluster, tenant)
                if path is None:
                    continue
                found = images.get(path)
                if found is None:
                    here.append(Cell(cluster, None, "not read yet"))
                else:
                    here.append(Cell(cluster, found[0], found[1]))
            if here:
                cells[env.name] = tuple(here)
        rows.append(Row(tenant, cells))
    return rows


def images_of(cells: Sequence[Cell]) -> set[str]:
    return {c.image for c in cells if c.image is not None}


def waiting(rows: Sequence[Row], policy: Policy) -> list[Waiting]:
    """Environments running something else than their (agreeing) upstream."""
    out: list[Waiting] = []
    for row in rows:
        for env in policy.environments:
            if env.upstream is None or env.name not in row.cells:
                continue
            upstream = images_of(row.cells.get(env.upstream, ()))
            if len(upstream) != 1:
                continue  # absent or drifting upstream: nothing clear to promote
            (wanted,) = upstream
            current = images_of(row.cells[env.name])
            if current != {wanted}:
                out.append(
                    Waiting(row.tenant, env.name, env.upstream, wanted, tuple(sorted(current)))
                )
    return out


def drift(rows: Sequence[Row]) -> list[Drift]:
    out: list[Drift] = []
    for row in rows:
        for env, cells in row.cells.items():
            if len(images_of(cells)) > 1:
                out.append(Drift(row.tenant, env, {c.cluster: c.image for c in cells}))
    return out
