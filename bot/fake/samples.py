"""A sample fleet repo laid out as in the seed document, for the demo and the tests.

``payment-app`` uses the seed's own form (``spec.values``) and ``checkout`` the real Flux
Operator form (``spec.type: Static`` + ``spec.defaultValues``): the bot reads and writes both.
"""

from __future__ import annotations

from typing import Any

CLUSTERS = ("dev-use1-01", "staging-use1-01", "prod-use1-01")
PAYMENT_IMAGE = "registry.acme.com/payment"
CHECKOUT_IMAGE = "ghcr.io/acme/checkout"

POLICY = b"""\
# Promotion policy for acme-fleet-config (read by the fleet promotion bot).
environments:
  - name: dev
    autoMerge: true
  - name: staging
    approvals: [{team: sre, count: 1}]
  - name: prod
    approvals: [{team: sre, count: 2}, {team: tech-leads, count: 1}]
promoteKeys: [image]
"""


def payment_input(env: str, tag: str, replicas: int, log_level: str) -> bytes:
    """The seed's input.yaml, byte for byte in its style (comment, quoting, key order)."""
    return f"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: payment-app-inputs
  namespace: payment-{env}
spec:
  # Non-sensitive configuration specific to this cluster
  values:
    appName: "payment-processor"
    image: "{PAYMENT_IMAGE}:{tag}"
    replicas: {replicas}
    logLevel: "{log_level}"
    environment: "{env}"
""".encode()


def checkout_input(env: str, tag: str) -> bytes:
    return f"""\
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSetInputProvider
metadata:
  name: checkout-inputs
  namespace: checkout-{env}
spec:
  type: Static
  defaultValues:
    appName: checkout
    image: {CHECKOUT_IMAGE}:{tag}  # bumped by the fleet bot
    replicas: 2
""".encode()


def sync(tenant: str, env: str) -> bytes:
    return f"""\
# This tells Flux to fetch the Blueprint from Repo A and apply it using Inputs from above
apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSet
metadata:
  name: {tenant}-sync
  namespace: {tenant.split("-")[0]}-{env}
spec:
  inputsFrom:
    - kind: ResourceSetInputProvider
      name: {tenant}-inputs
  resources: []
""".encode()


def external_secret(env: str) -> bytes:
    return f"""\
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: payment-app-secrets # This matches the reference in the ResourceSet
  namespace: payment-{env}
spec:
  secretStoreRef:
    name: cluster-vault # Pointing to this cluster's unique Vault
    kind: ClusterSecretStore
  target:
    name: payment-app-secrets # The K8s Secret to create
  data:
    - secretKey: db_password
      remoteRef:
        key: secret/data/payment-app/{env}
        property: db_password
""".encode()


def checkout_secret(env: str) -> bytes:
    """checkout's secret, wired right (only payment-app keeps the seed document's mismatch)."""
    return f"""\
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata:
  name: checkout-secrets
  namespace: checkout-{env}
spec:
  secretStoreRef:
    name: cluster-vault
    kind: ClusterSecretStore
  target:
    name: checkout-secrets
  data:
    - secretKey: api_key
      remoteRef:
        key: secret/data/checkout/{env}
        property: api_key
""".encode()


BLUEPRINTS_URL = "https://github.com/acme/platform-blueprints"


def flux_sources(url: str, tag: str) -> bytes:
    """The cluster's Flux source for Repo A (the blueprints), pinned to a release tag."""
    return f"""\
# Repo A: the platform blueprints, pinned to a release (promoted like an image)
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: platform-blueprints
  namespace: flux-system
spec:
  interval: 5m
  url: {url}
  ref:
    tag: {tag}
""".encode()


def fleet_files(
    payment: tuple[str, str, str] = ("v2.1.0-rc1", "v2.0.0", "v1.9.0"),
    checkout: tuple[str, str, str] = ("v3.4.0", "v3.3.0", "v3.2.0"),
    blueprints: tuple[str, str, str] = ("v1.2.0", "v1.2.0", "v1.1.0"),
    blueprints_url: str = BLUEPRINTS_URL,
) -> dict[str, bytes]:
    """The whole fleet repo: policy, three clusters, two tenants each (tags per environment),
    and each cluster's Flux source for the platform blueprints."""
    files: dict[str, bytes] = {
        ".github/promotion.yml": POLICY,
        "README.md": b"# acme-fleet-config\n\nThe fleet state: clusters, tenants, inputs.\n",
    }
    settings = {"dev": (2, "DEBUG"), "staging": (2, "INFO"), "prod": (4, "WARN")}
    for cluster, pay_tag, shop_tag, bp_tag in zip(
        CLUSTERS, payment, checkout, blueprints, strict=True
    ):
        env = cluster.split("-", 1)[0]
        replicas, level = settings[env]
        base = f"clusters/{cluster}"
        files[f"{base}/base/external-secrets.yaml"] = external_secret(env)
        files[f"{base}/flux-system/sources.yaml"] = flux_sources(blueprints_url, bp_tag)
        payment_app = payment_input(env, pay_tag, replicas, level)
        files[f"{base}/tenants/payment-app/input.yaml"] = payment_app
        files[f"{base}/tenants/payment-app/sync.yaml"] = sync("payment-app", env)
        files[f"{base}/tenants/checkout/input.yaml"] = checkout_input(env, shop_tag)
        files[f"{base}/tenants/checkout/sync.yaml"] = sync("checkout", env)
        files[f"{base}/tenants/checkout/external-secret.yaml"] = checkout_secret(env)
    return files


#: The people of the sample org and what they are (teams below).
PEOPLE = {
    "alice": "developer",
    "bob": "SRE",
    "carol": "SRE",
    "dana": "SRE and tech lead",
    "erin": "tech lead",
    "frank": "SRE",
    "rita": "read-only",
    "ci-bot": "CI",
}
TEAMS = {"sre": ("bob", "carol", "dana", "frank"), "tech-leads": ("dana", "erin")}


def seed(fake: Any, *, org: str = "acme", repo: str = "fleet", secret: str) -> Any:
    """Seed a fake GitHub: the org, its people and teams, the fleet repo, an app repo, and the
    bot's GitHub App installed on the org. Returns the app (its id and private key)."""
    app = fake.create_app("fleet-bot", name="Fleet Bot", webhook_secret=secret)
    fake.create_org(org)
    for login in PEOPLE:
        fake.create_user(login, name=login.title(), email=f"{login}@{org}.test")
    for team, members in TEAMS.items():
        fake.create_team(org, team, members=list(members))
    blueprints = f"{fake.web_url}/{org}/platform-blueprints.git"
    fake.create_repo(org, repo, files=fleet_files(blueprints_url=blueprints), author="alice")
    fake.create_repo(
        org,
        "platform-blueprints",
        files={"apps/standard-service/resourceset.yaml": b"# the blueprint (Repo A)\n"},
        author="bob",
    )
    fake.create_repo(org, "payment", files={"README.md": b"# payment service\n"}, author="alice")
    for login in PEOPLE:
        if login != "rita":
            fake.set_collaborator(f"{org}/{repo}", login, "write")
    fake.set_collaborator(f"{org}/{repo}", "rita", "read")
    fake.install(app, org, "all")
    return app
