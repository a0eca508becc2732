"""Fleet consistency: do a tenant's files fit together the way Flux and ESO will read them?

Each rule catches a mistake that every file passes on its own but the cluster trips over:

1. wiring: the tenant's ``sync.yaml`` ResourceSet must take its inputs (``inputsFrom``, by ``name``
   or label ``selector``) from a ResourceSetInputProvider in the tenant's ``input.yaml``, in the
   same namespace (the operator looks nowhere else), or the blueprint renders without the values;
2. expected secret: the Secret the blueprint mounts (``policy.secret_name`` filled in from the
   tenant's values) must be created by some ExternalSecret in the cluster's ``base/`` or the
   tenant's own directory. The seed document itself breaks this: its blueprint expects
   ``payment-processor-secrets`` and its ExternalSecret creates ``payment-app-secrets``;
3. secret isolation (``policy.secret_isolation``): an ExternalSecret in a cluster of one
   environment must not read a Vault path that names another environment (the seed's
   "shared-nothing" promise);
4. seed form: inputs under ``spec.values`` never reach the cluster; the warning shows the real form.

Adoption: a fleet that already breaks a rule must not have every pull request blocked for it. When
the caller passes the paths a PR changed, only findings that involve one of them stay as they are;
the others become warnings prefixed ``pre-existing: ``. Pure: no I/O; files that cannot be read are
skipped (``check_tree`` reports them), so this never raises on repository content.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from string import Formatter

from bot.fleet.check import Finding
from bot.fleet.inputs import RSIP_KIND, TenantInput, read_input_cached
from bot.fleet.layout import INPUT_NAMES, FileLocation, Fleet, build_fleet
from bot.fleet.policy import POLICY_PATH, Policy
from bot.fleet.yamlsafe import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    YamlProblem,
    compose_documents,
    decode_utf8,
    line_of,
    mapping_get,
)

__all__ = [
    "ESO_GROUP",
    "FLUX_GROUP",
    "MAX_MANIFEST_BYTES",
    "PRE_EXISTING",
    "classify",
    "consistency_findings",
]

FLUX_GROUP = "fluxcd.controlplane.io"
ESO_GROUP = "external-secrets.io"
MAX_MANIFEST_BYTES = 1 * 1024 * 1024
PRE_EXISTING = "pre-existing: "

_STR_TAG = "tag:yaml.org,2002:str"
_YAML_SUFFIXES = (".yaml", ".yml")
_SEED_FORM_PREFIX = "spec.values is the seed document's form"


def consistency_findings(
    files: Mapping[str, bytes],
    policy: Policy,
    changed: Collection[str] | None = None,
) -> list[Finding]:
    """Consistency findings for a fleet tree (path -> content), sorted by path and line.

    ``changed`` is the set of paths a pull request adds, changes or deletes; None judges the tree
    as a whole (every finding keeps its severity).
    """
    tree = _Tree(files, policy)
    drafts: list[_Draft] = [
        *_wiring_findings(tree),
        *_secret_findings(tree),
        *_isolation_findings(tree),
        *_seed_form_findings(tree),
    ]
    touched = None if changed is None else frozenset(changed)
    findings = [_adopt(draft, touched, files) for draft in drafts]
    return sorted(findings, key=lambda f: (f.path, f.line or 0, f.severity, f.message))


@dataclass(frozen=True)
class _Draft:
    """A finding and what its rule read: a change to any of it makes the finding the PR's own.

    ``involved`` are the files the rule read; ``dirs`` are directories where deleting a file may
    have caused the finding (the tree no longer holds the file, only the changed paths name it).
    """

    finding: Finding
    involved: frozenset[str]
    dirs: tuple[str, ...] = ()


def _adopt(draft: _Draft, changed: frozenset[str] | None, files: Mapping[str, bytes]) -> Finding:
    """The finding as is when the PR touches what it involves; otherwise a pre-existing warning."""
    if changed is None or draft.involved & changed:
        return draft.finding
    deleted = (p for p in changed if p not in files and p.endswith(_YAML_SUFFIXES))
    if draft.dirs and any(path.startswith(draft.dirs) for path in deleted):
        return draft.finding
    finding = draft.finding
    return replace(finding, severity="warning", message=PRE_EXISTING + finding.message)


# --- reading the tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Provider:
    """A ResourceSetInputProvider document: what ``inputsFrom`` can match it by."""

    name: str | None
    namespace: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class _ExternalSecret:
    """An ExternalSecret document: the Secret it creates and the remote keys it reads."""

    location: FileLocation
    target: str | None  # spec.target.name, else metadata.name (as ESO does)
    target_line: int
    keys: tuple[tuple[str, int], ...]  # (remote key, line)


class _Tree:
    """The files with the fleet layout, each parsed at most once."""

    def __init__(self, files: Mapping[str, bytes], policy: Policy) -> None:
        self.files = files
        self.policy = policy
        self.fleet: Fleet = build_fleet(files, policy)
        self.unreadable: set[str] = set()
        self._documents: dict[str, list[Node] | None] = {}
        self._inputs: dict[str, TenantInput | None] = {}

    def documents(self, path: str) -> list[Node] | None:
        """The YAML documents of ``path``, or None when the file is absent or cannot be read."""
        if path not in self._documents:
            self._documents[path] = self._parse(path)
        return self._documents[path]

    def tenant_input(self, path: str) -> TenantInput | None:
        """``read_input`` of ``path``; None when it cannot be read (check_tree reports why)."""
        if path not in self._inputs:
            self._inputs[path] = _read_input_cached(path, self.files[path])
        return self._inputs[path]

    @cached_property
    def locations(self) -> tuple[FileLocation, ...]:
        """Every YAML file under ``clusters/<cluster>/``, in path order."""
        found = (self.fleet.locate(path) for path in sorted(self.files))
        return tuple(loc for loc in found if loc is not None and loc.path.endswith(_YAML_SUFFIXES))

    @cached_property
    def external_secrets(self) -> Mapping[str, tuple[_ExternalSecret, ...]]:
        """The ExternalSecrets of each cluster, in path and line order."""
        by_cluster: dict[str, list[_ExternalSecret]] = {}
        for location in self.locations:
            if not _may_hold_external_secret(self.files[location.path]):
                continue
            for doc in self.documents(location.path) or ():
                if _is_object(doc, ESO_GROUP, "ExternalSecret"):
                    secret = _read_external_secret(location, doc)
                    by_cluster.setdefault(location.cluster, []).append(secret)
        return {cluster: tuple(secrets) for cluster, secrets in by_cluster.items()}

    def _parse(self, path: str) -> list[Node] | None:
        data = self.files.get(path)
        if data is None:
            return None
        documents = _parse_cached(data)
        if documents is None:
            self.unreadable.add(path)
            return None
        return list(documents)


# A PR is judged twice (before and after), and most files are the same both times and from one
# check to the next: parse each content once. Parsed documents are never modified here.
@lru_cache(maxsize=1024)
def _parse_cached(data: bytes) -> tuple[Node, ...] | None:
    try:
        text, _ = decode_utf8(data, MAX_MANIFEST_BYTES)
        return tuple(compose_documents(text))
    except YamlProblem:
        return None


def _read_input_cached(path: str, data: bytes) -> TenantInput | None:
    found = read_input_cached(path, data)
    return found if isinstance(found, TenantInput) else None


def _may_hold_external_secret(data: bytes) -> bool:
    """False only when no document of ``data`` can have ``kind: ExternalSecret``.

    Parsing every manifest of a large fleet is the expensive part of this module. A kind reaches
    the parser's scalar value as written, except in double-quoted scalars, whose escapes
    (``\\x53``, an escaped line break) can spell it without the literal text; so a file with
    neither the word nor a backslash cannot hold one.
    """
    return b"ExternalSecret" in data or b"\\" in data


def _read_external_secret(location: FileLocation, doc: Node) -> _ExternalSecret:
    spec = _at(doc, "spec")
    target = _at(spec, "target", "name")
    if _string(target) is None:
        target = _at(doc, "metadata", "name")
    keys: list[tuple[str, int]] = []
    for item in _items(_at(spec, "data")):
        keys.extend(_string_with_line(_at(item, "remoteRef", "key")))
    for item in _items(_at(spec, "dataFrom")):
        keys.extend(_string_with_line(_at(item, "extract", "key")))
    line = line_of(target) if target is not None else line_of(doc)
    return _ExternalSecret(location, _string(target), line, tuple(keys))


def _is_object(doc: Node, group: str, kind: str) -> bool:
    """True when the document is a ``kind`` of API group ``group`` (any version)."""
    api_version = _string(_at(doc, "apiVersion")) or ""
    return _string(_at(doc, "kind")) == kind and api_version.startswith(f"{group}/")


def _at(node: Node | None, *keys: str) -> Node | None:
    """The node at ``keys`` through nested mappings, or None."""
    for key in keys:
        found = mapping_get(node, key) if node is not None else None
        if found is None:
            return None
        node = found[1]
    return node


def _string(node: Node | None) -> str | None:
    """A string scalar's value; None for anything else (an int name is no Kubernetes name)."""
    if isinstance(node, ScalarNode) and node.tag == _STR_TAG and node.value:
        return str(node.value)
    return None


def _string_with_line(node: Node | None) -> Iterator[tuple[str, int]]:
    value = _string(node)
    if value is not None and node is not None:
        yield value, line_of(node)


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _string_map(node: Node | None) -> dict[str, str]:
    """A mapping of scalars as Kubernetes sees labels: every key and value as its text."""
    if not isinstance(node, MappingNode):
        return {}
    return {
        str(key.value): str(value.value)
        for key, value in node.value
        if isinstance(key, ScalarNode) and isinstance(value, ScalarNode)
    }


def _namespace(doc: Node) -> str:
    """``metadata.namespace``; Kubernetes puts an object without one in ``default``."""
    return _string(_at(doc, "metadata", "namespace")) or "default"


def _input_candidates(cluster: str, tenant: str) -> frozenset[str]:
    """The paths the tenant's input file may have: a PR may add, rename or delete either."""
    return frozenset(f"clusters/{cluster}/tenants/{tenant}/{name}" for name in INPUT_NAMES)


# --- rule 1: sync.yaml inputsFrom wiring ------------------------------------------------------


def _wiring_findings(tree: _Tree) -> Iterator[_Draft]:
    for location in tree.locations:
        if location.kind != "sync" or location.tenant is None:
            continue
        documents = tree.documents(location.path)
        input_path = tree.fleet.input_path(location.cluster, location.tenant)
        providers = _providers(tree, input_path)
        if documents is None or providers is None:
            continue  # unreadable: check_tree says why, and guessing here would only add noise
        involved = _input_candidates(location.cluster, location.tenant) | {location.path}
        for doc in documents:
            if _is_object(doc, FLUX_GROUP, "ResourceSet"):
                message = _wiring_problem(doc, input_path, location, providers)
                if message is not None:
                    line = line_of(_key_or_doc(doc, "spec", "inputsFrom"))
                    finding = Finding(location.path, line, "error", message)
                    yield _Draft(finding, involved)


def _providers(tree: _Tree, input_path: str | None) -> list[_Provider] | None:
    """The RSIPs of the tenant's input file ([] without one); None when it cannot be read."""
    if input_path is None:
        return []
    documents = tree.documents(input_path)
    if documents is None:
        return None
    return [
        _Provider(
            name=_string(_at(doc, "metadata", "name")),
            namespace=_namespace(doc),
            labels=_string_map(_at(doc, "metadata", "labels")),
        )
        for doc in documents
        if _is_object(doc, FLUX_GROUP, RSIP_KIND)
    ]


def _key_or_doc(doc: Node, *keys: str) -> Node:
    """The key node of ``keys`` (where a person looks for it), else the document itself."""
    parent = _at(doc, *keys[:-1])
    found = mapping_get(parent, keys[-1]) if parent is not None else None
    return found[0] if found is not None else doc


def _wiring_problem(
    doc: Node, input_path: str | None, location: FileLocation, providers: list[_Provider]
) -> str | None:
    """Why this ResourceSet does not read the tenant's input file, with the fix; None if it does."""
    namespace = _namespace(doc)
    rs = f"the ResourceSet {namespace}/{_string(_at(doc, 'metadata', 'name')) or '(unnamed)'}"
    refs = [ref for ref in _items(_at(doc, "spec", "inputsFrom")) if _references_rsip(ref)]
    names = [p.name for p in providers] + [_string(_at(ref, "name")) for ref in refs]
    example = next((name for name in names if name), f"{location.tenant}-inputs")
    if input_path is None:
        where = f"clusters/{location.cluster}/tenants/{location.tenant}/"
        return (
            f"{rs} has no tenant values to read: {where} has no input.yaml; add one there with "
            f"a {RSIP_KIND} named {example!r} in namespace {namespace!r}, named in inputsFrom"
        )
    if not refs:
        return (
            f"{rs} has no inputsFrom entry for a {RSIP_KIND}, so it never reads the tenant's "
            f"values in {input_path}; add `inputsFrom: [{{kind: {RSIP_KIND}, name: {example}}}]`"
        )
    if any(_matches(ref, p) and p.namespace == namespace for ref in refs for p in providers):
        return None
    wanted = ", ".join(_describe_ref(ref) for ref in refs)
    defined = ", ".join(f"{p.namespace}/{p.name or '(unnamed)'}" for p in providers) or "none"
    return (
        f"{rs} takes its inputs from {wanted}, but the {RSIP_KIND}s in {input_path} are: "
        f"{defined}; {_wiring_fix(refs, providers, namespace)}"
    )


def _wiring_fix(refs: list[Node], providers: list[_Provider], namespace: str) -> str:
    """The likeliest fix: a namespace mismatch, a wrong name, or a selector that finds nothing."""
    elsewhere = [p for p in providers if any(_matches(ref, p) for ref in refs)]
    if elsewhere:
        return (
            f"inputsFrom finds providers only in the ResourceSet's own namespace ({namespace!r}, "
            f"the provider is in {elsewhere[0].namespace!r}): give both the same "
            "metadata.namespace (none means 'default')"
        )
    if not providers:
        return f"add a {RSIP_KIND} document to the input file"
    if any(mapping_get(ref, "name") is not None for ref in refs):
        return f"set the inputsFrom name to {providers[0].name!r}"
    return "give the provider metadata.labels that the selector matches, or change the selector"


def _references_rsip(ref: Node) -> bool:
    """True for an inputsFrom entry naming a ResourceSetInputProvider (the only kind allowed)."""
    kind = _at(ref, "kind")
    return isinstance(ref, MappingNode) and (kind is None or _string(kind) == RSIP_KIND)


def _matches(ref: Node, provider: _Provider) -> bool:
    """Whether an inputsFrom entry picks ``provider`` by name or selector, namespace aside."""
    name = _at(ref, "name")
    if name is not None:
        return provider.name is not None and _string(name) == provider.name
    selector = _at(ref, "selector")
    return isinstance(selector, MappingNode) and _selects(selector, provider.labels)


def _selects(selector: Node, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: every matchLabels pair and every matchExpression."""
    wanted = _string_map(_at(selector, "matchLabels"))
    if any(labels.get(key) != value for key, value in wanted.items()):
        return False
    return all(
        _expression_holds(expr, labels) for expr in _items(_at(selector, "matchExpressions"))
    )


def _expression_holds(expression: Node, labels: Mapping[str, str]) -> bool:
    key = _string(_at(expression, "key"))
    operator = _string(_at(expression, "operator"))
    values = {str(item.value) for item in _items(_at(expression, "values"))}
    if key is None:
        return False
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # an unknown operator is refused by the API server: it selects nothing


def _describe_ref(ref: Node) -> str:
    name = _string(_at(ref, "name"))
    if name is not None:
        return f"{RSIP_KIND} {name!r}"
    selector = _at(ref, "selector")
    labels = ",".join(f"{k}={v}" for k, v in _string_map(_at(selector, "matchLabels")).items())
    return f"the selector {labels or '(match expressions)'}"


# --- rule 2: the expected secret exists -------------------------------------------------------


def _secret_findings(tree: _Tree) -> Iterator[_Draft]:
    for (cluster, tenant), path in sorted(tree.fleet.inputs.items()):
        tenant_input = tree.tenant_input(path)
        if tenant_input is None:
            continue
        secrets = tree.external_secrets.get(cluster, ())
        scope = [s for s in secrets if _in_scope(s.location, cluster, tenant)]
        involved = _input_candidates(cluster, tenant) | {s.location.path for s in scope}
        involved |= {POLICY_PATH}  # secretName decides the expected name
        finding = _secret_problem(tree, tenant_input, cluster, tenant, scope)
        if finding is not None:
            dirs = (f"clusters/{cluster}/base/", f"clusters/{cluster}/tenants/{tenant}/")
            yield _Draft(finding, involved, dirs)


def _secret_problem(
    tree: _Tree,
    tenant_input: TenantInput,
    cluster: str,
    tenant: str,
    scope: list[_ExternalSecret],
) -> Finding | None:
    pattern = tree.policy.secret_name
    expected, used, missing = _expected_secret(pattern, tenant_input)
    if expected is None:
        return Finding(
            tenant_input.path,
            tenant_input.values_line,
            "warning",
            f"the policy's secretName {pattern!r} needs {missing}, which spec.{tenant_input.form} "
            "does not have, so the bot cannot tell which Secret the blueprint expects; add it to "
            f"spec.{tenant_input.form} or change secretName in {POLICY_PATH}",
        )
    if any(secret.target == expected for secret in scope):
        return None
    span = tenant_input.span(next(iter(used))) if used else None
    from_values = ", ".join(f"{field} {value!r}" for field, value in used.items())
    reason = f"secretName {pattern!r}" + (f" with {from_values}" if from_values else "")
    message = (
        f"the blueprint expects the Secret {expected!r} ({reason}), but no ExternalSecret in "
        f"clusters/{cluster}/base/ or clusters/{cluster}/tenants/{tenant}/ creates it; "
        f"{_secret_fix(expected, tenant, used, scope)}"
    )
    unreadable = sorted(
        p
        for p in tree.unreadable
        if (loc := tree.fleet.locate(p)) and _in_scope(loc, cluster, tenant)
    )
    if unreadable:
        message += f" (not read: {', '.join(unreadable)}; fix those files first)"
    return Finding(
        tenant_input.path, span.line if span else tenant_input.values_line, "error", message
    )


def _secret_fix(
    expected: str, tenant: str, used: Mapping[str, str], scope: list[_ExternalSecret]
) -> str:
    """Retarget the ExternalSecret that looks like this tenant's, or add one.

    One looks like the tenant's when it sits in the tenant's directory or its Secret's name
    contains the tenant's name or a value the pattern used (the seed's ``payment-app-secrets``
    for tenant ``payment-app``); another tenant's secret in ``base/`` is never suggested.
    """
    hints = [tenant, *used.values()]
    own = [
        s
        for s in scope
        if s.target is not None
        and (s.location.tenant == tenant or any(hint in s.target for hint in hints))
    ]
    if not own:
        return f"add an ExternalSecret with `spec.target.name: {expected}`"
    created = ", ".join(f"{s.location.path}:{s.target_line} creates {s.target!r}" for s in own)
    return f"{created}: set spec.target.name to {expected!r} there" + (
        f", or change {' and '.join(used)} so that the names agree" if used else ""
    )


def _in_scope(location: FileLocation, cluster: str, tenant: str) -> bool:
    return location.cluster == cluster and (location.kind == "base" or location.tenant == tenant)


def _expected_secret(
    pattern: str, tenant_input: TenantInput
) -> tuple[str | None, dict[str, str], str | None]:
    """(Secret name, {value key: its text}, None), or (None, {}, what is missing).

    Keys are dotted paths into the tenant's values (``{appName}``, ``{app.name}``); only strings
    and whole numbers make a name, anything else cannot be part of a Kubernetes name.
    """
    parts: list[str] = []
    used: dict[str, str] = {}
    try:
        parsed = list(Formatter().parse(pattern))
    except ValueError:
        return None, {}, "a valid pattern (its braces do not pair up)"
    for literal, field, _spec, _conversion in parsed:
        parts.append(literal)
        if field is None:
            continue
        value = tenant_input.get(field) if field else None
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None, {}, f"the value {field or '{}'!r}"
        parts.append(str(value))
        used[field] = str(value)
    return "".join(parts), used, None


# --- rule 3: secret isolation -----------------------------------------------------------------


def _isolation_findings(tree: _Tree) -> Iterator[_Draft]:
    if not tree.policy.secret_isolation:
        return
    names = {env.name for env in tree.policy.environments}
    for secrets in tree.external_secrets.values():
        for secret in secrets:
            environment = secret.location.environment
            if environment is None:
                continue
            others = names - {environment}
            for key, line in secret.keys:
                message = _isolation_problem(secret.location, environment, others, key)
                if message is not None:
                    finding = Finding(secret.location.path, line, "error", message)
                    # the policy decides which environments there are and which is this one's
                    yield _Draft(finding, frozenset({secret.location.path, POLICY_PATH}))


def _isolation_problem(
    location: FileLocation, environment: str, others: Iterable[str], key: str
) -> str | None:
    segments = key.split("/")
    foreign = sorted(set(segments) & set(others))
    if not foreign:
        return None
    own = "/".join(environment if segment in foreign else segment for segment in segments)
    return (
        f"{location.cluster} is a {environment} cluster, but this ExternalSecret reads {key!r}, "
        f"a {' and '.join(foreign)} secret path; with secretIsolation each environment reads only "
        f"its own secrets: use the {environment} path (e.g. {own!r})"
    )


# --- rule 4: seed-form inputs -----------------------------------------------------------------


def _seed_form_findings(tree: _Tree) -> Iterator[_Draft]:
    for (cluster, tenant), path in sorted(tree.fleet.inputs.items()):
        tenant_input = tree.tenant_input(path)
        if tenant_input is None or tenant_input.form != "values":
            continue
        for warning in tenant_input.warnings:
            if warning.startswith(_SEED_FORM_PREFIX):
                finding = Finding(path, tenant_input.values_line, "warning", warning)
                yield _Draft(finding, _input_candidates(cluster, tenant))


def _key(finding: Finding) -> tuple[str, str, str]:
    return (finding.path, finding.severity, finding.message)


def classify(
    before: Sequence[Finding], after: Sequence[Finding]
) -> tuple[list[Finding], list[Finding]]:
    """(errors the change introduces, warnings to list) from findings before and after."""
    existed = {_key(f) for f in before}
    new_errors: list[Finding] = []
    warnings: list[Finding] = []
    for finding in after:
        if finding.severity == "error" and _key(finding) not in existed:
            new_errors.append(finding)
        elif finding.severity == "error":
            warnings.append(
                Finding(finding.path, finding.line, "warning", PRE_EXISTING + finding.message)
            )
        else:
            warnings.append(finding)
    return new_errors, warnings
