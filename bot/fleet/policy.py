"""``.github/promotion.yml``: the promotion policy of a fleet repo, validated, with defaults.

The file is written by people, so every mistake becomes a :class:`PolicyError` that names the file,
the line and the fix. A bad policy makes the bot act on nothing in that repo (it says so on the
checks), which is why validation is strict: a typo such as ``aprovals`` must not silently drop a
compliance gate.
"""

from __future__ import annotations

import difflib
import functools
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.fleet.yamlsafe import (
    FileProblem,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlProblem,
    compose_documents,
    construct,
    decode_utf8,
    line_of,
)

__all__ = [
    "DEFAULT_POLICY",
    "MAX_APPROVALS",
    "MAX_POLICY_BYTES",
    "MAX_SOAK",
    "POLICY_PATH",
    "UNGATABLE",
    "ApprovalRule",
    "Environment",
    "Freeze",
    "Overrides",
    "Policy",
    "PolicyError",
    "Window",
    "glob_regex",
    "parse_policy",
]

POLICY_PATH = ".github/promotion.yml"
MAX_POLICY_BYTES = 256 * 1024

_ENV_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TEAM_RE = re.compile(r"(?:@?([A-Za-z0-9][A-Za-z0-9_.-]*)/)?([A-Za-z0-9][A-Za-z0-9_.-]*)")
_DURATION_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")

_TOP_KEYS = (
    "environments",
    "promoteKeys",
    "secretName",
    "secretIsolation",
    "prereleases",
    "ungated",
    "overrides",
)
#: Bounds on every number and list of the file: a policy is read on every event, so a value
#: such as ``count: 1000000000`` must be refused, not worked through.
MAX_APPROVALS = 50  # approvals one environment may require, all teams together
MAX_SOAK = timedelta(days=365)
MAX_ENVIRONMENTS = 50
MAX_LIST = 200  # entries of clusters, promoteKeys, ungated
MAX_PATTERN = 256  # characters of one glob or key
_GLOB_CHARS_RE = re.compile(r"[^\\\[\]{}!]+")
_ENV_KEYS = (
    "name",
    "from",
    "clusters",
    "autoMerge",
    "approvals",
    "upstreamClusters",
    "minSoak",
    "requireUpstreamStatus",
    "windows",
    "freezes",
)
_APPROVAL_KEYS = ("team", "count")
_WINDOW_KEYS = ("days", "from", "until", "timezone")
_FREEZE_KEYS = ("from", "until", "reason")
_OVERRIDE_KEYS = ("team", "count")

#: Day names of ``windows[].days``, Monday first (``datetime.weekday()`` order).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {
    **{day: i for i, day in enumerate(DAYS)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}
_CLOCK_RE = re.compile(r"(\d{1,2}):(\d{2})")
#: Bounds that keep a policy cheap to judge (the calendar is evaluated on every PR event).
MAX_WINDOWS = 50
MAX_FREEZES = 200
MAX_REASON = 300
MAX_OVERRIDE_COUNT = 20


class PolicyError(FileProblem):
    """A policy file the bot cannot act on; ``str()`` is ``path:line: message``."""


@dataclass(frozen=True)
class ApprovalRule:
    """``count`` distinct members of the org team ``team`` (a slug such as ``sre``) must approve."""

    team: str
    count: int


@dataclass(frozen=True)
class Window:
    """When changes may merge: on ``days`` (0 = Monday), local wall-clock ``start`` to ``end``.

    Times are minutes after local midnight in ``timezone`` (an IANA name). ``end`` is 1..1440
    (1440: midnight at the end of the day); an ``end`` before ``start`` spans midnight, and the
    part after midnight belongs to the day the window started on.
    """

    days: tuple[int, ...]
    start: int
    end: int
    timezone: str = "UTC"

    @property
    def spans_midnight(self) -> bool:
        return self.end < self.start


@dataclass(frozen=True)
class Freeze:
    """No merges into the environment from ``start`` until ``end`` (aware UTC times)."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class Overrides:
    """Who may let a change through a failing ``window`` or ``lineage`` check (break-glass):
    ``count`` distinct members of the org team ``team``; without a team, people with admin
    permission on the fleet repo."""

    team: str | None = None
    count: int = 1


@dataclass(frozen=True)
class Environment:
    """One stage of the promotion order."""

    name: str
    upstream: str | None
    clusters: tuple[str, ...] | None
    auto_merge: bool
    approvals: tuple[ApprovalRule, ...]
    upstream_clusters: Literal["any", "all"] = "any"
    min_soak: timedelta | None = None
    require_upstream_status: str | None = None
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()

    @property
    def gated(self) -> bool:
        """True when a change here needs evidence (lineage upstream) or approvals."""
        return self.upstream is not None or bool(self.approvals)

    @property
    def scheduled(self) -> bool:
        """True when the policy limits when changes may merge here (windows or freezes)."""
        return bool(self.windows or self.freezes)


@dataclass(frozen=True)
class Policy:
    """The validated policy; environments are in the order the file lists them."""

    environments: tuple[Environment, ...]
    promote_keys: tuple[str, ...] = ("image",)
    secret_name: str = "{appName}-secrets"
    secret_isolation: bool = True
    prereleases: bool = False
    #: Globs of paths outside ``clusters/`` and ``.github/`` that need no gate (docs); every
    #: other path outside ``clusters/`` is judged by the rules of every gated environment.
    ungated: tuple[str, ...] = ()
    overrides: Overrides = Overrides()
    _by_name: dict[str, Environment] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _ungated_res: list[re.Pattern[str]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not self.environments:
            raise ValueError("a policy needs at least one environment")
        self._by_name.update((env.name, env) for env in self.environments)
        self._ungated_res.extend(glob_regex(pattern) for pattern in self.ungated)

    def is_ungated(self, path: str) -> bool:
        """True when ``path`` needs no gate: outside ``clusters/`` and ``.github/``, and
        matched by an ``ungated`` glob."""
        if path.startswith(UNGATABLE):
            return False
        return any(r.fullmatch(path) for r in self._ungated_res)

    def environment(self, name: str) -> Environment | None:
        """The environment called ``name``, or None."""
        return self._by_name.get(name)

    @property
    def first(self) -> Environment:
        """The environment that receives new images: the first one listed without an upstream."""
        return next((e for e in self.environments if e.upstream is None), self.environments[0])

    def downstream_of(self, name: str) -> tuple[Environment, ...]:
        """The environments promoted *directly* from ``name`` (``from: name``), in listed order."""
        return tuple(env for env in self.environments if env.upstream == name)


DEFAULT_POLICY = Policy(
    environments=(
        Environment("dev", None, None, True, ()),
        Environment("staging", "dev", None, False, (ApprovalRule("sre", 1),)),
        Environment(
            "prod", "staging", None, False, (ApprovalRule("sre", 2), ApprovalRule("tech-leads", 1))
        ),
    ),
)


#: Path prefixes ``ungated`` never applies to: the clusters (gated by their environments) and
#: the policy's own directory.
UNGATABLE = ("clusters/", ".github/")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The paths a glob of ``ungated`` matches, as a regular expression.

    Like ``.gitignore``: a pattern without ``/`` matches a file name in any directory
    (``*.md``); with ``/`` it matches from the repository root (``docs/*.md``). ``*`` and
    ``?`` stay inside one directory, ``**`` spans any number of them (``docs/**``), and a
    trailing ``/`` means everything below (``docs/`` is ``docs/**``).
    """
    if pattern.endswith("/"):
        pattern += "**"
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    if "/" not in pattern:
        body = "(?:[^/]+/)*" + body
    return re.compile(body, re.DOTALL)


def parse_policy(data: bytes | str | None, path: str = POLICY_PATH) -> Policy:
    """Validate a policy file; an absent, empty or comment-only file gives :data:`DEFAULT_POLICY`.

    Raises :class:`PolicyError` on the first problem, with its line.
    """
    if data is None:
        return DEFAULT_POLICY
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        text, _ = decode_utf8(raw, MAX_POLICY_BYTES)
        documents = compose_documents(text)
    except YamlProblem as exc:
        raise PolicyError(path, exc.line, exc.message) from None
    return _Parser(path).policy(documents)


@dataclass
class _Parser:
    """Node-level validation, so that every error can point at its line."""

    path: str

    def fail(self, node: Node | None, message: str) -> PolicyError:
        return PolicyError(self.path, line_of(node) if node is not None else None, message)

    def policy(self, documents: list[Node]) -> Policy:
        if len(documents) > 1:
            raise self.fail(documents[1], "the file holds several YAML documents; keep only one")
        root = documents[0] if documents else None
        if root is None or _is_null(root):
            return DEFAULT_POLICY
        items = self.mapping(root, _TOP_KEYS, "the top level")
        environments = (
            self.environments(items["environments"])
            if "environments" in items
            else DEFAULT_POLICY.environments
        )
        return Policy(
            environments=environments,
            promote_keys=(
                self.promote_keys(items["promoteKeys"])
                if "promoteKeys" in items
                else DEFAULT_POLICY.promote_keys
            ),
            secret_name=(
                self.string(items["secretName"], "secretName")
                if "secretName" in items
                else DEFAULT_POLICY.secret_name
            ),
            secret_isolation=self.boolean(
                items.get("secretIsolation"), "secretIsolation", DEFAULT_POLICY.secret_isolation
            ),
            prereleases=self.boolean(
                items.get("prereleases"), "prereleases", DEFAULT_POLICY.prereleases
            ),
            ungated=self.ungated(items["ungated"]) if "ungated" in items else (),
            overrides=(
                self.overrides(items["overrides"])
                if "overrides" in items
                else DEFAULT_POLICY.overrides
            ),
        )

    def mapping(self, node: Node, known: tuple[str, ...], what: str) -> dict[str, Node]:
        """The entries of a mapping node, refusing unknown and duplicate keys."""
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping of keys to values")
        items: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or key not in known:
                raise self.fail(key_node, _unknown_key_message(key, known, what))
            if key in items:
                raise self.fail(key_node, f"the key {key!r} appears twice in {what}; keep one")
            items[key] = value_node
        return items

    def environments(self, node: Node) -> tuple[Environment, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(
                node, "environments must be a non-empty list, e.g. [{name: dev}, {name: prod}]"
            )
        if len(node.value) > MAX_ENVIRONMENTS:
            raise self.fail(
                node.value[MAX_ENVIRONMENTS],
                f"environments lists {len(node.value)} entries; at most {MAX_ENVIRONMENTS} "
                "are allowed",
            )
        seen: dict[str, Node] = {}
        raw: list[tuple[str, dict[str, Node]]] = []
        for entry in node.value:
            items = self.mapping(entry, _ENV_KEYS, "an environment")
            if "name" not in items:
                raise self.fail(entry, "this environment has no name; add `name: <environment>`")
            name = self.string(items["name"], "name")
            if not _ENV_NAME_RE.fullmatch(name):
                raise self.fail(
                    items["name"],
                    f"the environment name {name!r} is not allowed; use lower-case letters, "
                    "digits, '-' and '_', starting with a letter or digit",
                )
            if name in seen:
                raise self.fail(
                    items["name"],
                    f"the environment {name!r} is listed twice (first on line "
                    f"{line_of(seen[name])}); give each environment one entry",
                )
            seen[name] = items["name"]
            raw.append((name, items))
        previous_names = [None, *(name for name, _ in raw)]
        envs = tuple(
            self.environment(items, previous)
            for (_, items), previous in zip(raw, previous_names, strict=False)
        )
        self.check_upstreams(envs, dict(raw))
        return envs

    def environment(self, items: dict[str, Node], previous: str | None) -> Environment:
        name = self.string(items["name"], "name")
        upstream = previous
        if "from" in items:
            upstream = None if _is_null(items["from"]) else self.string(items["from"], "from")
        clusters = None
        if "clusters" in items:
            clusters = self.string_list(items["clusters"], "clusters", 'e.g. ["prod-*"]')
        upstream_clusters = "any"
        if "upstreamClusters" in items:
            upstream_clusters = self.string(items["upstreamClusters"], "upstreamClusters")
            if upstream_clusters not in ("any", "all"):
                raise self.fail(
                    items["upstreamClusters"],
                    f"upstreamClusters is {upstream_clusters!r}; use 'any' or 'all'",
                )
        return Environment(
            name=name,
            upstream=upstream,
            clusters=clusters,
            auto_merge=self.boolean(items.get("autoMerge"), "autoMerge", False),
            approvals=self.approvals(items["approvals"]) if "approvals" in items else (),
            upstream_clusters="all" if upstream_clusters == "all" else "any",
            min_soak=self.duration(items["minSoak"]) if "minSoak" in items else None,
            require_upstream_status=(
                self.string(items["requireUpstreamStatus"], "requireUpstreamStatus")
                if "requireUpstreamStatus" in items
                else None
            ),
            windows=self.windows(items["windows"]) if "windows" in items else (),
            freezes=self.freezes(items["freezes"]) if "freezes" in items else (),
        )

    def check_upstreams(
        self, envs: tuple[Environment, ...], items: dict[str, dict[str, Node]]
    ) -> None:
        """Every ``from`` names a listed environment, and following ``from`` never loops."""
        by_name = {env.name: env for env in envs}
        for env in envs:
            if env.upstream is not None and env.upstream not in by_name:
                known = ", ".join(by_name)
                raise self.fail(
                    items[env.name].get("from"),
                    f"environment {env.name!r} comes from {env.upstream!r}, which is not listed; "
                    f"use one of: {known}",
                )
        for env in envs:
            chain = [env.name]
            current = env.upstream
            while current is not None:
                if current == env.name:
                    cycle = " -> ".join([*chain, current])
                    raise self.fail(
                        items[env.name].get("from") or items[env.name]["name"],
                        f"the environments form a cycle ({cycle}); remove or change a `from` "
                        "so that the promotion order has a start",
                    )
                if current in chain:
                    break  # a cycle that does not pass through env; reported for its members
                chain.append(current)
                current = by_name[current].upstream

    def approvals(self, node: Node) -> tuple[ApprovalRule, ...]:
        if not isinstance(node, SequenceNode):
            raise self.fail(node, "approvals must be a list, e.g. [{team: sre, count: 2}]")
        rules: list[ApprovalRule] = []
        for entry in node.value:
            items = self.mapping(entry, _APPROVAL_KEYS, "an approval")
            if "team" not in items:
                raise self.fail(entry, "this approval has no team; add `team: <team-slug>`")
            team = self.team(items["team"])
            count = self.count(items["count"]) if "count" in items else 1
            if any(rule.team == team for rule in rules):
                raise self.fail(
                    items["team"], f"team {team!r} is listed twice; give it one entry with a count"
                )
            rules.append(ApprovalRule(team, count))
            total = sum(rule.count for rule in rules)
            if total > MAX_APPROVALS:
                raise self.fail(
                    items.get("count", entry),
                    f"these approvals add up to {total}; one environment may require at most "
                    f"{MAX_APPROVALS}",
                )
        return tuple(rules)

    # --- the change calendar: windows, freezes, overrides ---------------------------------------

    def windows(self, node: Node) -> tuple[Window, ...]:
        example = 'e.g. [{days: [mon, tue], from: "09:00", until: "16:00"}]'
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(node, f"windows must be a non-empty list, {example}")
        if len(node.value) > MAX_WINDOWS:
            raise self.fail(
                node.value[MAX_WINDOWS],
                f"an environment may list at most {MAX_WINDOWS} windows; merge some of them",
            )
        return tuple(self.window(entry) for entry in node.value)

    def window(self, node: Node) -> Window:
        items = self.mapping(node, _WINDOW_KEYS, "a window")
        for key in ("from", "until"):
            if key not in items:
                raise self.fail(
                    node, f'this window has no `{key}`; add `{key}: "HH:MM"` (24-hour local time)'
                )
        start_text, start = self.clock(items["from"], "from")
        end_text, end = self.clock(items["until"], "until")
        if start == 1440:
            raise self.fail(items["from"], "from is '24:00'; a window starts at '00:00' to '23:59'")
        if start_text == end_text or start == end:
            raise self.fail(
                items["until"],
                f"from and until are both {start_text!r}, so the window has no length; for the "
                "whole day write from: '00:00' and until: '24:00'",
            )
        days = self.days(items["days"]) if "days" in items else tuple(range(7))
        zone = self.timezone(items["timezone"]) if "timezone" in items else "UTC"
        return Window(days=days, start=start, end=end if end else 1440, timezone=zone)

    def clock(self, node: Node, key: str) -> tuple[str, int]:
        """``"HH:MM"`` as (text, minutes after midnight); ``24:00`` only for ``until``."""
        # The scalar's own text: YAML 1.1 readers take an unquoted 09:00 for a number (540).
        text = str(node.value).strip() if isinstance(node, ScalarNode) else ""
        match = _CLOCK_RE.fullmatch(text)
        hours, minutes = (int(match.group(1)), int(match.group(2))) if match else (99, 99)
        if not match or minutes > 59 or hours > 24 or (hours == 24 and (minutes or key != "until")):
            raise self.fail(
                node,
                f'{key} is {_show(node)}; write a 24-hour local time such as "09:00" or '
                '"16:30"' + (' ("24:00" is the end of the day)' if key == "until" else ""),
            )
        return text, hours * 60 + minutes

    def days(self, node: Node) -> tuple[int, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(
                node, "days must be a non-empty list of days, e.g. [mon, tue, wed, thu, fri]"
            )
        seen: list[int] = []
        for item in node.value:
            text = self.value(item)
            name = text.strip().lower() if isinstance(text, str) else ""
            if name not in _DAY_NAMES:
                close = difflib.get_close_matches(name, DAYS, n=1, cutoff=0.5) if name else []
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(item, f"{_show(item)} is not a day; {hint}use {', '.join(DAYS)}")
            day = _DAY_NAMES[name]
            if day in seen:
                raise self.fail(item, f"{DAYS[day]!r} is listed twice in days; list it once")
            seen.append(day)
        return tuple(sorted(seen))

    def timezone(self, node: Node) -> str:
        name = self.string(node, "timezone")
        if _zone_or_none(name) is None:
            close = _close_zones(name)
            hint = f"did you mean {close!r}? " if close else ""
            raise self.fail(
                node,
                f"timezone {name!r} is not an IANA time zone; {hint}use a name such as "
                "'UTC', 'Europe/Berlin' or 'America/New_York'",
            )
        return name

    def freezes(self, node: Node) -> tuple[Freeze, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(
                node,
                "freezes must be a non-empty list, e.g. [{from: 2026-12-20T00:00:00Z, "
                "until: 2027-01-05T00:00:00Z, reason: winter holidays}]",
            )
        if len(node.value) > MAX_FREEZES:
            raise self.fail(
                node.value[MAX_FREEZES],
                f"an environment may list at most {MAX_FREEZES} freezes; remove past ones",
            )
        return tuple(self.freeze(entry) for entry in node.value)

    def freeze(self, node: Node) -> Freeze:
        items = self.mapping(node, _FREEZE_KEYS, "a freeze")
        for key, example in (
            ("from", "from: 2026-12-20T00:00:00Z"),
            ("until", "until: 2027-01-05T00:00:00Z"),
            ("reason", "reason: winter holidays"),
        ):
            if key not in items:
                raise self.fail(node, f"this freeze has no `{key}`; add `{example}`")
        start = self.timestamp(items["from"], "from")
        end = self.timestamp(items["until"], "until")
        if start >= end:
            raise self.fail(
                items["until"],
                f"this freeze ends ({_utc(end)}) before it starts ({_utc(start)}); until must be "
                "after from",
            )
        reason = self.string(items["reason"], "reason")
        if len(reason) > MAX_REASON:
            raise self.fail(
                items["reason"], f"reason is {len(reason)} characters; keep it under {MAX_REASON}"
            )
        return Freeze(start=start, end=end, reason=" ".join(reason.split()))

    def timestamp(self, node: Node, key: str) -> datetime:
        """An ISO-8601 time with its zone (``2026-12-20T00:00:00Z``), as an aware UTC time."""
        text = str(node.value).strip() if isinstance(node, ScalarNode) else ""
        moment: datetime | None
        try:
            moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00")) if text else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None or len(text) <= 10:
            problem = "has no time zone" if moment is not None else "is not a time"
            raise self.fail(
                node,
                f"{key} is {_show(node)}, which {problem}; write an ISO-8601 time with its zone, "
                "e.g. 2026-12-20T00:00:00Z (UTC) or 2026-12-20T09:00:00+01:00",
            )
        return moment.astimezone(UTC)

    def overrides(self, node: Node) -> Overrides:
        items = self.mapping(node, _OVERRIDE_KEYS, "overrides")
        team = self.team(items["team"]) if "team" in items else None
        count = self.count(items["count"]) if "count" in items else 1
        if count > MAX_OVERRIDE_COUNT:
            raise self.fail(
                items["count"],
                f"overrides.count is {count}; at most {MAX_OVERRIDE_COUNT} people can be asked "
                "to break the glass",
            )
        return Overrides(team=team, count=count)

    def team(self, node: Node) -> str:
        text = self.string(node, "team")
        match = _TEAM_RE.fullmatch(text)
        if match is None:
            raise self.fail(
                node, f"team {text!r} is not a team slug; write it as 'sre' or '@org/sre'"
            )
        return match.group(2).lower()

    def count(self, node: Node) -> int:
        value = self.value(node)
        if type(value) is not int or not 1 <= value <= MAX_APPROVALS:
            raise self.fail(
                node,
                f"count is {_show(node)}; it must be a whole number of at least 1 and at most "
                f"{MAX_APPROVALS}",
            )
        return value

    def duration(self, node: Node) -> timedelta:
        text = self.value(node)
        match = _DURATION_RE.fullmatch(text) if isinstance(text, str) and text else None
        if match is None:
            raise self.fail(
                node,
                f"minSoak is {_show(node)}; write a duration such as '30m', '24h', '1h30m' or '2d'",
            )
        limit = f"minSoak is {_show(node)}; it can be at most {MAX_SOAK.days}d"
        if any(g is not None and len(g) > 9 for g in match.groups()):
            raise self.fail(node, limit)
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
        if total > MAX_SOAK.total_seconds():
            raise self.fail(node, limit)
        return timedelta(seconds=total)

    def promote_keys(self, node: Node) -> tuple[str, ...]:
        keys = self.string_list(node, "promoteKeys", "e.g. [image, app.version]")
        for key in keys:
            if any(not part for part in key.split(".")):
                raise self.fail(
                    node, f"promoteKeys has {key!r}; use keys like 'image' or 'app.version'"
                )
        if len(set(keys)) != len(keys):
            raise self.fail(node, "promoteKeys lists a key twice; list each key once")
        return keys

    def ungated(self, node: Node) -> tuple[str, ...]:
        patterns = self.string_list(node, "ungated", 'e.g. ["docs/**", "*.md"]')
        for item, pattern in zip(node.value, patterns, strict=True):
            if pattern.startswith("/"):
                raise self.fail(item, f"ungated has {pattern!r}; write paths without a leading '/'")
            if not _GLOB_CHARS_RE.fullmatch(pattern) or "//" in pattern:
                raise self.fail(
                    item,
                    f"ungated has {pattern!r}; use paths with *, ** and ? only "
                    "(no [ ] { } ! or backslash)",
                )
            if pattern.startswith(UNGATABLE) or pattern in ("clusters", ".github"):
                raise self.fail(
                    item,
                    f"ungated has {pattern!r}, but clusters/ and .github/ are always gated "
                    "(by their environments, and as the policy); remove it",
                )
        return patterns

    def string_list(self, node: Node, key: str, example: str) -> tuple[str, ...]:
        if not isinstance(node, SequenceNode) or not node.value:
            raise self.fail(node, f"{key} must be a non-empty list of strings, {example}")
        if len(node.value) > MAX_LIST:
            raise self.fail(
                node.value[MAX_LIST],
                f"{key} lists {len(node.value)} entries; at most {MAX_LIST} are allowed",
            )
        values = tuple(self.string(item, key) for item in node.value)
        for item, value in zip(node.value, values, strict=True):
            if len(value) > MAX_PATTERN:
                raise self.fail(
                    item, f"{key} has an entry of {len(value)} characters; at most {MAX_PATTERN}"
                )
        return values

    def string(self, node: Node, key: str) -> str:
        value = self.value(node)
        if not isinstance(value, str) or not value:
            raise self.fail(node, f"{key} is {_show(node)}; it must be a non-empty string")
        return value

    def boolean(self, node: Node | None, key: str, default: bool) -> bool:
        if node is None:
            return default
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.fail(node, f"{key} is {_show(node)}; it must be true or false")
        return value

    def value(self, node: Node) -> Any:
        """A scalar's Python value; collections are returned as themselves for the type checks."""
        if not isinstance(node, ScalarNode):
            return node
        try:
            return construct(node)
        except YamlProblem as exc:
            raise self.fail(node, exc.message) from None


@functools.lru_cache(maxsize=256)
def _zone_or_none(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone ``name``, or None. Only names of the zone database count (no paths, no
    ``localtime``), so a policy means the same on every machine."""
    if name not in _zone_names():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


@functools.lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # ``localtime`` is the machine's own zone (a link some systems add), not an IANA name.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules", "Factory"}


def _close_zones(name: str) -> str | None:
    by_lower = {zone.lower(): zone for zone in _zone_names()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name, sorted(_zone_names()), n=1, cutoff=0.7)
    return close[0] if close else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _show(node: Node) -> str:
    if isinstance(node, ScalarNode):
        value = str(node.value)
        if len(value) > 40:
            value = value[:20] + "…" + value[-10:]
        return repr(value) if node.style else value or "empty"
    return "a list" if isinstance(node, SequenceNode) else "a mapping"


def _unknown_key_message(key: str | None, known: Iterable[str], what: str) -> str:
    known = tuple(known)
    if key is None:
        return f"{what} has a key that is not a plain string; use one of: {', '.join(known)}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{what} has an unknown key {key!r}; did you mean {close[0]!r}?"
    return f"{what} has an unknown key {key!r}; known keys are: {', '.join(known)}"
