"""``promotion/fleet`` (issue 11): consistency of the fleet on every PR, end to end."""

from __future__ import annotations

from tests.e2e.gatekit import DEV, open_change, path, summary, verdict, with_image
from tests.harness import FLEET, Harness

FLEET_CHECK = "promotion/fleet"
DEV_SECRETS = f"clusters/{DEV}/base/external-secrets.yaml"


async def test_seed_shaped_fleet_reports_the_secret_name_mismatch(world: Harness) -> None:
    world.fake.set_required_checks(FLEET, "main", ["ci/build"])  # keep the PR open
    number = open_change(
        world, "dev", {path(DEV): with_image(world, DEV, "registry.acme.com/payment:v2.5.0")}
    )
    await world.settle()
    # the seed document's own mismatch is pre-existing: listed, but it does not fail the PR
    assert verdict(world, number, FLEET_CHECK) == "success"
    text = summary(world, number, FLEET_CHECK)
    assert "payment-processor-secrets" in text and "payment-app-secrets" in text
    assert "pre-existing" in text


async def test_dev_cluster_reading_a_prod_vault_path_fails(world: Harness) -> None:
    current = world.file(DEV_SECRETS)
    assert current is not None
    leaked = current.replace(b"secret/data/payment-app/dev", b"secret/data/payment-app/prod")
    number = open_change(world, "leak", {DEV_SECRETS: leaked}, title="dev: read prod secrets")
    await world.settle()
    assert verdict(world, number, FLEET_CHECK) == "failure"
    assert "prod" in summary(world, number, FLEET_CHECK)
    pr = world.fake.repo(FLEET).prs[number]
    assert not pr.merged  # a dev-only PR, but the bot does not merge a failing one


async def test_breaking_the_sync_wiring_fails(world: Harness) -> None:
    sync = f"clusters/{DEV}/tenants/checkout/sync.yaml"
    current = world.file(sync)
    assert current is not None
    number = open_change(
        world, "wiring", {sync: current.replace(b"name: checkout-inputs", b"name: checkout-input")}
    )
    await world.settle()
    assert verdict(world, number, FLEET_CHECK) == "failure"
    assert "checkout-input" in summary(world, number, FLEET_CHECK)
