"""Upstream health rows: upserted per upstream, marked stopped by the gateway that wrote them, gone with the upstream."""

from __future__ import annotations

from mcp_acl.store import PolicyAdmin
from mcp_acl.store.pins import Pins, add_pinned
from mcp_acl.store.upstream_status import UpstreamStatus, mark_stopped, pinned_counts, read_statuses, report_status
from mcp_acl.store.upstreams import Upstream, add_upstream, remove_upstream

TRACKER = Upstream("tracker", "http", url="http://127.0.0.1:9/mcp")
LOCAL = Upstream("local", "stdio", command="server")


def test_reports_are_upserted_marked_stopped_and_removed_with_their_upstream(engine):
    admin = PolicyAdmin(engine)
    add_pinned(admin, TRACKER, Pins(tools={"echo": {"name": "echo"}, "hang": {"name": "hang"}}))
    add_upstream(admin, LOCAL)
    revision = admin.revision()
    report_status(engine, "tracker", UpstreamStatus("down", last_error="ConnectError", reported_by="a:1"))
    report_status(engine, "tracker", UpstreamStatus("connected", 2, 0, reported_by="a:1"))
    report_status(engine, "local", UpstreamStatus("down", last_error="exited", reported_by="b:2"))
    # An upstream removed meanwhile: the report is dropped, not an error.
    report_status(engine, "nosuch", UpstreamStatus("connected", reported_by="a:1"))
    with engine.connect() as conn:
        found = read_statuses(conn)
        assert pinned_counts(conn) == {"tracker": 2}
    assert set(found) == {"tracker", "local"}
    assert (found["tracker"].state, found["tracker"].tools_listed, found["tracker"].last_error) == ("connected", 2, None)
    assert found["tracker"].reported_at is not None
    # Health is not policy: reporting does not move the revision.
    assert admin.revision() == revision
    mark_stopped(engine, "a:1")
    with engine.connect() as conn:
        assert {name: s.state for name, s in read_statuses(conn).items()} == {"tracker": "stopped", "local": "down"}
    remove_upstream(admin, "tracker")
    with engine.connect() as conn:
        assert set(read_statuses(conn)) == {"local"}
