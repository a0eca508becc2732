"""``/promote <env> [tenant ...]``: parsing the command and planning the promotion (pure).

A promotion copies the policy's ``promoteKeys`` values (default: the image) of each selected
tenant from the upstream environment's clusters to every cluster of the target environment that
has the tenant, changing only those values' bytes. Upstream clusters that disagree about a
tenant's value stop that tenant: a promotion never guesses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.fleet.inputs import InputError, TenantInput, set_values
from bot.fleet.layout import Fleet, is_safe_name
from bot.fleet.policy import Policy
from bot.rules.commands import Command
from bot.rules.refs import ref_component

COMMAND = "/promote"
USAGE = (
    "Usage: `/promote <environment> [tenant ...]`, for example `/promote staging` on a merged "
    "dev bump PR, or `/promote prod payment-app` anywhere."
)


class CommandError(ValueError):
    """A ``/promote`` line that cannot be carried out; the message is the reply."""


@dataclass(frozen=True)
class PromoteRequest:
    """What one ``/promote`` line asks for: the environment (lower-case) and the items."""

    environment: str
    tenants: tuple[str, ...]
    line: str


def promote_request(command: Command) -> PromoteRequest:
    """The request of a ``/promote`` command (see :func:`bot.rules.commands.extract_commands`).

    Raises CommandError for a ``/promote`` without an environment, or names that are not plain
    names (paths, globs, look-alike characters). Environment names are case-insensitive, tenant
    names are directory names and kept as written.
    """
    args = command.args
    if not args:
        raise CommandError(f"`{COMMAND}` needs an environment. {USAGE}")
    for name in args:
        if name.startswith("source:") and _plain_source(name):
            continue
        if not is_safe_name(name):
            raise CommandError(
                f"`{_shown(name)}` is not a plain name (letters, digits, `.`, `_`, `-`). " + USAGE
            )
    return PromoteRequest(
        environment=args[0].lower(),
        tenants=tuple(dict.fromkeys(args[1:])),
        line=command.shown,
    )


def _plain_source(text: str) -> bool:
    """``source:<namespace>/<name>`` with both parts plain names."""
    namespace, slash, name = text.removeprefix("source:").partition("/")
    return bool(slash) and is_safe_name(namespace) and is_safe_name(name)


def _shown(text: str) -> str:
    return text.replace("`", "'")[:80]


@dataclass(frozen=True)
class ValueMove:
    tenant: str
    cluster: str
    path: str
    key: str
    old: Any
    new: Any


@dataclass(frozen=True)
class PromotionPlan:
    environment: str
    upstream: str
    tenants: tuple[str, ...]
    changes: Mapping[str, bytes] = field(default_factory=dict)
    moves: tuple[ValueMove, ...] = ()
    up_to_date: tuple[str, ...] = ()
    disagreements: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    missing_clusters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    not_upstream: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    sources: Mapping[str, tuple[str, ...]] = field(
        default_factory=dict
    )  # tenant -> upstream clusters

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def promoted(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.tenant for m in self.moves))


def merge_plans(first: PromotionPlan, second: PromotionPlan) -> PromotionPlan:
    """One promotion of tenants and sources together (same environment and upstream)."""
    return PromotionPlan(
        environment=first.environment,
        upstream=first.upstream,
        tenants=first.tenants + second.tenants,
        changes={**first.changes, **second.changes},
        moves=first.moves + second.moves,
        up_to_date=first.up_to_date + second.up_to_date,
        disagreements={**first.disagreements, **second.disagreements},
        missing_clusters={**first.missing_clusters, **second.missing_clusters},
        not_upstream=first.not_upstream + second.not_upstream,
        problems=first.problems + second.problems,
        sources={**first.sources, **second.sources},
    )


def resolve_environment(policy: Policy, name: str) -> tuple[str, str]:
    """(environment, its upstream) or CommandError listing the valid choices."""
    promotable = [e.name for e in policy.environments if e.upstream is not None]
    env = policy.environment(name.lower())
    if env is None:
        raise CommandError(
            f"There is no environment `{_shown(name)}`. You can promote to: "
            + ", ".join(f"`{n}`" for n in promotable)
            + f". {USAGE}"
        )
    if env.upstream is None:
        raise CommandError(
            f"`{env.name}` has no upstream environment: new images reach it on their own. "
            "You can promote to: " + ", ".join(f"`{n}`" for n in promotable) + "."
        )
    return env.name, env.upstream


def check_tenants(fleet: Fleet, environment: str, tenants: Sequence[str]) -> None:
    """CommandError when a named tenant is not an exact tenant of the target environment."""
    known = fleet.tenants_of(environment)
    unknown = [t for t in tenants if t not in known]
    if unknown:
        raise CommandError(
            "Unknown tenant "
            + ", ".join(f"`{_shown(t)}`" for t in unknown)
            + f" in {environment}. Tenants there: "
            + (", ".join(f"`{t}`" for t in known) or "none")
            + "."
        )


def plan_promotion(
    fleet: Fleet,
    policy: Policy,
    environment: str,
    upstream: str,
    tenants: Sequence[str],
    inputs: Mapping[str, TenantInput | InputError],
    files: Mapping[str, bytes],
) -> PromotionPlan:
    """Copy the promoted values of ``tenants`` from ``upstream`` to ``environment``.

    ``inputs`` holds the parsed input of every upstream and target cluster of those tenants
    (by path); ``files`` the raw bytes of the target ones (for the byte-preserving edit).
    """
    keys = policy.promote_keys
    changes: dict[str, bytes] = {}
    moves: list[ValueMove] = []
    up_to_date: list[str] = []
    disagreements: dict[str, dict[str, Any]] = {}
    missing: dict[str, tuple[str, ...]] = {}
    not_upstream: list[str] = []
    problems: list[str] = []
    sources: dict[str, tuple[str, ...]] = {}
    for tenant in tenants:
        values: dict[str, dict[str, Any]] = {}
        for cluster in fleet.clusters_of(upstream):
            path = fleet.input_path(cluster, tenant)
            if path is None:
                continue
            parsed = inputs.get(path)
            if isinstance(parsed, InputError) or parsed is None:
                problems.append(f"{tenant}: {parsed or path + ' could not be read'}")
                values = {}
                break
            values[cluster] = {k: parsed.get(k) for k in keys}
        if not values:
            if not any(p.startswith(f"{tenant}:") for p in problems):
                not_upstream.append(tenant)
            continue
        distinct = {tuple(sorted(v.items(), key=lambda kv: kv[0])) for v in values.values()}
        if len(distinct) > 1:
            disagreements[tenant] = {c: v for c, v in values.items()}
            continue
        wanted = next(iter(values.values()))
        sources[tenant] = tuple(values)
        targets = [c for c in fleet.clusters_of(environment) if fleet.input_path(c, tenant)]
        lacking = tuple(c for c in fleet.clusters_of(environment) if c not in targets)
        if lacking:
            missing[tenant] = lacking
        changed_here = False
        for cluster in targets:
            path = fleet.input_path(cluster, tenant)
            assert path is not None
            parsed = inputs.get(path)
            if isinstance(parsed, InputError) or parsed is None or path not in files:
                problems.append(f"{tenant}: {parsed or path + ' could not be read'}")
                continue
            edits = {k: v for k, v in wanted.items() if v is not None and parsed.get(k) != v}
            unsettable = [
                k for k, v in edits.items() if not isinstance(v, str | int | float | bool)
            ]
            if unsettable:
                problems.append(
                    f"{tenant}: {', '.join(unsettable)} in {path} is not a single value; "
                    "only scalar values are promoted"
                )
                continue
            if not edits:
                continue
            try:
                changes[path] = set_values(path, files[path], edits)
            except InputError as exc:
                problems.append(f"{tenant}: {exc}")
                continue
            changed_here = True
            for key, value in edits.items():
                moves.append(ValueMove(tenant, cluster, path, key, parsed.get(key), value))
        if not changed_here and not any(p.startswith(f"{tenant}:") for p in problems):
            up_to_date.append(tenant)
    return PromotionPlan(
        environment=environment,
        upstream=upstream,
        tenants=tuple(tenants),
        changes=changes,
        moves=tuple(moves),
        up_to_date=tuple(up_to_date),
        disagreements=disagreements,
        missing_clusters=missing,
        not_upstream=tuple(not_upstream),
        problems=tuple(problems),
        sources=sources,
    )


def differing_tenants(
    fleet: Fleet,
    policy: Policy,
    environment: str,
    upstream: str,
    inputs: Mapping[str, TenantInput | InputError],
) -> tuple[str, ...]:
    """Tenants of ``environment`` whose promoted values differ from some upstream cluster's."""
    out: list[str] = []
    for tenant in fleet.tenants_of(environment):
        ups = [
            inputs.get(p)
            for c in fleet.clusters_of(upstream)
            if (p := fleet.input_path(c, tenant)) is not None
        ]
        downs = [
            inputs.get(p)
            for c in fleet.clusters_of(environment)
            if (p := fleet.input_path(c, tenant)) is not None
        ]
        up_values = {
            tuple(u.get(k) for k in policy.promote_keys) for u in ups if isinstance(u, TenantInput)
        }
        down_values = {
            tuple(d.get(k) for k in policy.promote_keys)
            for d in downs
            if isinstance(d, TenantInput)
        }
        if up_values and down_values and up_values != down_values:
            out.append(tenant)
    return tuple(out)


def promotion_branch(environment: str, tenants: Sequence[str]) -> str:
    """One branch per (environment, tenant set), so a repeated request finds the open PR."""
    names = "+".join(sorted(tenants))
    if len(names) > 80 or not re.fullmatch(r"[A-Za-z0-9._+-]+", names):
        names = hashlib.sha256(names.encode()).hexdigest()[:16]
    return f"fleet-bot/promote/{ref_component(environment)}/{ref_component(names)}"
