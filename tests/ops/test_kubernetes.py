"""deploy/kubernetes: valid against the Kubernetes schemas (offline), and wired together right.

``kubernetes-validate`` carries the OpenAPI schemas of every Kubernetes release in the package,
so validation needs no network (the test forbids it). The ExternalSecret is a custom resource:
its schema is the External Secrets Operator's CRD, which is not on PyPI and which we may not copy
into the repository, so it is validated against our transcription of the fields it uses
(``externalsecret_v1.schema.json``, unknown fields refused); ``kubeconform`` with the CRDs
catalogue checks it against the real CRD where the network allows (see the README).
"""

from __future__ import annotations

import copy
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from bot.service.app import DRAIN_SECONDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
#: The oldest Kubernetes release still supported upstream when this was written, and the newest
#: whose schemas the package carries.
VERSIONS = ("1.30", kubernetes_validate.latest_version())


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe").load_all(path.read_text(encoding="utf-8")) if d]


def kustomization() -> dict[str, Any]:
    (doc,) = load(DEPLOY / "kustomization.yaml")
    return doc


def rendered() -> list[dict[str, Any]]:
    """What ``kustomize build`` makes of the kustomization, for the features it uses
    (resources, namespace, images, labels without selectors)."""
    k = kustomization()
    assert set(k) <= {"apiVersion", "kind", "namespace", "labels", "resources", "images"}
    out: list[dict[str, Any]] = []
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in k.get("images", [])}
    pairs: dict[str, str] = {}
    for group in k.get("labels", []):
        assert group.get("includeSelectors") is False
        pairs.update(group["pairs"])
    for name in k["resources"]:
        for doc in load(DEPLOY / name):
            doc = copy.deepcopy(doc)
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = k["namespace"]
            doc["metadata"].setdefault("labels", {}).update(pairs)
            for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                c["image"] = images.get(c["image"], c["image"])
            out.append(doc)
    return out


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def test_every_resource_is_valid_for_kubernetes_in_strict_mode() -> None:
    docs = rendered()
    assert sorted(d["kind"] for d in docs) == [
        "Deployment", "Namespace", "PodDisruptionBudget", "Service",
    ]  # fmt: skip
    for version in VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
        secret = load(DEPLOY / "secrets" / "secret.example.yaml")[0]
        kubernetes_validate.validate(secret, version, strict=True)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"].__setitem__("replicas", "two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("livenesProbe", {}),
        lambda d: d["spec"]["template"]["spec"].__setitem__("terminationGracePeriod", 35),
    ],
)
def test_the_validation_catches_a_broken_manifest(break_it: Any) -> None:
    deployment = copy.deepcopy(by_kind(rendered())["Deployment"])
    break_it(deployment)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_deployment_runs_two_safe_replicas_probed_on_healthz() -> None:
    docs = by_kind(rendered())
    deployment = docs["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # the drain (in-flight work after SIGTERM, then aiohttp's 5 s) fits inside the grace
    assert pod["terminationGracePeriodSeconds"] >= DRAIN_SECONDS + 5
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ports
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = re.search(r"^USER (\d+)", dockerfile, re.M)
    assert uid is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    # the only writable places are volumes (the image's working directory and /tmp)
    workdir = re.search(r"^WORKDIR (\S+)", dockerfile, re.M)
    assert workdir is not None
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {workdir.group(1), "/tmp"}
    assert "--production" in container["args"]
    assert container["image"] == "registry.example.com/platform/fleet-bot:0.1.0"
    labels = spec["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = docs[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] in ports
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_the_secret_it_expects_is_what_the_examples_make() -> None:
    (container,) = by_kind(rendered())["Deployment"]["spec"]["template"]["spec"]["containers"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert set(refs) == {"APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "DATABASE_URL"}
    assert {r["name"] for r in refs.values()} == {"fleet-bot"}
    keys = {r["key"] for r in refs.values()}
    (secret,) = load(DEPLOY / "secrets" / "secret.example.yaml")
    assert secret["metadata"]["name"] == "fleet-bot"
    assert secret["metadata"]["namespace"] == kustomization()["namespace"]
    assert set(secret["stringData"]) == keys
    assert all("<" in v for v in secret["stringData"].values())  # placeholders, no secrets
    assert secret["stringData"]["DATABASE_URL"].startswith("postgresql://")
    (external,) = load(DEPLOY / "secrets" / "externalsecret.example.yaml")
    schema = json.loads((Path(__file__).parent / "externalsecret_v1.schema.json").read_text())
    jsonschema.validate(external, schema)
    assert external["spec"]["target"]["name"] == "fleet-bot"
    assert {d["secretKey"] for d in external["spec"]["data"]} == keys
    broken = copy.deepcopy(external)
    broken["spec"]["data"][0]["remoteRef"]["propery"] = "typo"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_setting_the_deployment_sets_is_documented() -> None:
    (container,) = by_kind(rendered())["Deployment"]["spec"]["template"]["spec"]["containers"]
    readme = (ROOT / "README.md").read_text()
    for env in container["env"]:
        assert f"| `{env['name']}` |" in readme, env["name"]
