"""app.yml against the code: exactly the events the routers handle, the permissions those events
need, and a README row justifying every permission."""

from __future__ import annotations

import re

from bot import handlers
from tests.ops.conftest import REPO_ROOT, manifest

#: GitHub sends these to every app, whatever it subscribed to, and refuses them in a manifest's
#: ``default_events``: the routers handle them, the manifest must not list them.
DELIVERED_TO_EVERY_APP = frozenset({"installation", "installation_repositories"})

#: The permission an app needs before GitHub lets it subscribe to an event (GitHub's webhook
#: docs, "Availability" of each event). A new handler's event must be added here on purpose.
EVENT_PERMISSION = {
    "check_run": "checks",
    "check_suite": "checks",
    "issue_comment": "issues",
    "issues": "issues",
    "membership": "members",
    "merge_group": "merge_queues",
    "team": "members",
    "package": "packages",
    "registry_package": "packages",
    "pull_request": "pull_requests",
    "pull_request_review": "pull_requests",
    "pull_request_review_comment": "pull_requests",
    "push": "contents",
    "release": "contents",
    "repository_dispatch": "contents",
    "status": "statuses",
}

#: Every key GitHub's manifest flow accepts.
MANIFEST_KEYS = frozenset(
    {
        "name",
        "url",
        "hook_attributes",
        "redirect_url",
        "callback_urls",
        "setup_url",
        "description",
        "public",
        "default_events",
        "default_permissions",
        "request_oauth_on_install",
        "setup_on_update",
    }
)


def router_events() -> set[str]:
    """Every event name a handler is registered for, read from the composed router itself."""
    router = handlers.router
    return set(router._shallow_routes) | set(router._deep_routes)


def test_manifest_subscribes_to_exactly_the_events_the_routers_handle() -> None:
    declared = set(manifest()["default_events"])
    handled = router_events() - DELIVERED_TO_EVERY_APP
    assert handled - declared == set(), "handled but missing from app.yml's default_events"
    assert declared - handled == set(), "in app.yml's default_events but no handler uses it"
    assert len(manifest()["default_events"]) == len(declared), "an event is listed twice"


def test_events_delivered_to_every_app_are_handled_but_not_declared() -> None:
    assert router_events() >= DELIVERED_TO_EVERY_APP
    assert not DELIVERED_TO_EVERY_APP & set(manifest()["default_events"])


def test_every_event_has_the_permission_github_requires_for_it() -> None:
    permissions = manifest()["default_permissions"]
    for event in manifest()["default_events"]:
        assert event in EVENT_PERMISSION, f"say which permission {event!r} needs"
        needed = EVENT_PERMISSION[event]
        assert needed in permissions, f"{event} needs the {needed} permission"


def test_manifest_uses_only_keys_github_knows_and_stays_private() -> None:
    data = manifest()
    assert set(data) <= MANIFEST_KEYS
    assert data["public"] is False
    # The setup page fills these per deployment; fixed values in app.yml would be wrong.
    assert not {"hook_attributes", "redirect_url"} & set(data)


def test_readme_justifies_exactly_the_manifests_permissions() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)` \| (read|write) \| (.+?) \|$", readme, re.M)
    table = {name: access for name, access, _why in rows}
    assert table == manifest()["default_permissions"]
    for name, _access, why in rows:
        assert len(why.split()) >= 5, f"the README says too little about {name}"


def test_the_fakes_default_app_has_exactly_the_manifests_permissions() -> None:
    """Every end-to-end test runs as an app with these: a permission app.yml does not ask for
    would let a test pass that fails on a real installation."""
    from bot.fake import DEFAULT_PERMISSIONS

    assert manifest()["default_permissions"] == DEFAULT_PERMISSIONS
