"""Per-identity listings: filtered by visibility, limits in descriptions, cached per revision and expiry."""

from __future__ import annotations

from datetime import timedelta

from mcp_acl.gateway.invocation import utcnow
from mcp_acl.gateway.views import MAX_AGE, CatalogueViews, describe_with_limits
from mcp_acl.policy import Identity
from mcp_acl.store import PolicyAdmin, PolicyLoader

from .harness import REPORTS_NOTE

ALICE = Identity("alice", client_id="mcp-acl-cli")
BOB = Identity("bob", client_id="mcp-acl-cli")


def test_limits_are_appended_to_the_description():
    assert describe_with_limits("Read a file.", ["only reports/.", "only on weekdays"]) == (
        "Read a file.\n\nLimits for you: only reports/; only on weekdays."
    )
    assert describe_with_limits("Read a file.", []) == "Read a file."


def test_listing_is_cached_until_the_revision_moves(sqlite_world):
    views = CatalogueViews(sqlite_world.gateway().catalogue)
    loader = PolicyLoader(sqlite_world.engine)
    now = utcnow()
    first = views.listing(loader.current(), BOB, now)
    assert views.listing(loader.current(), BOB, now) is first
    PolicyAdmin(sqlite_world.engine).add_grant("role:intern", "tool:sql.tables")
    moved = views.listing(loader.current(), BOB, now)
    assert [t.name for t in first.tools] == ["files.list"]
    assert [t.name for t in moved.tools] == ["files.list", "sql.tables"]


def test_listing_goes_stale_when_a_grant_expires(sqlite_world):
    now = utcnow()
    PolicyAdmin(sqlite_world.engine).add_grant("user:bob", "tool:sql.tables", expires_at=now + timedelta(minutes=5))
    views = CatalogueViews(sqlite_world.gateway().catalogue)
    policy = PolicyLoader(sqlite_world.engine).current()
    just_before = views.listing(policy, BOB, now + timedelta(minutes=4, seconds=55))
    after = views.listing(policy, BOB, now + timedelta(minutes=5))
    assert just_before.stale_after == now + timedelta(minutes=5)
    assert "sql.tables" in [t.name for t in just_before.tools]
    assert "sql.tables" not in [t.name for t in after.tools]


def test_listing_is_rebuilt_after_its_maximum_age(sqlite_world):
    views = CatalogueViews(sqlite_world.gateway().catalogue)
    policy = PolicyLoader(sqlite_world.engine).current()
    now = utcnow()
    first = views.listing(policy, ALICE, now)
    (sqlite_world.home / "workspace" / "reports" / "q4.md").write_text("# Q4\n")
    assert views.listing(policy, ALICE, now + MAX_AGE / 2) is first
    later = views.listing(policy, ALICE, now + MAX_AGE)
    assert [r.uri for r in later.resources] == ["file:///reports/q3.md", "file:///reports/q4.md"]


def test_template_is_listed_only_when_a_grant_covers_it(sqlite_world):
    views = CatalogueViews(sqlite_world.gateway().catalogue)
    loader = PolicyLoader(sqlite_world.engine)
    assert views.build(loader.current(), ALICE, utcnow()).templates == ()
    PolicyAdmin(sqlite_world.engine).add_grant("user:alice", "resource:file:///*")
    [template] = views.build(loader.current(), ALICE, utcnow()).templates
    assert template.uri_template == "file:///{path}"


def test_descriptions_carry_each_callers_own_limits(sqlite_world):
    views = CatalogueViews(sqlite_world.gateway().catalogue)
    policy = PolicyLoader(sqlite_world.engine).current()
    tools = {t.name: t.description for t in views.build(policy, ALICE, utcnow()).tools}
    assert tools["files.read"].endswith(f"Limits for you: {REPORTS_NOTE}.")
