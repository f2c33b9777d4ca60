"""Health reports hold no secrets: an error text that quotes a credential's value is scrubbed before it is written."""

from __future__ import annotations

from gateway.harness import sqlite_world  # noqa: F401 (fixture)
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.upstream_status import read_statuses
from mcp_acl.store.upstreams import Upstream, add_upstream
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.health import HealthReports, redact


async def test_a_reported_error_never_holds_a_credential_value(sqlite_world, monkeypatch, tmp_path):
    world = sqlite_world
    monkeypatch.setenv("TEST_UPSTREAM_TOKEN", "Bearer tok-s3cr3t-one\ncontinued-s3cr3t-two")
    key_file = tmp_path / "key"
    key_file.write_text("file-s3cr3t-three\n")
    up = Upstream("leaky", "http", url="http://127.0.0.1:9/mcp", headers={"Authorization": "env:TEST_UPSTREAM_TOKEN", "X-Key": f"file:{key_file}"})
    add_upstream(PolicyAdmin(world.engine), up)
    # Errors as HTTP libraries word them: the value quoted whole, escaped, or cut into its lines.
    connection = UpstreamConnection(up)
    connection.last_error = (
        "LocalProtocolError: Illegal header value b'Bearer tok-s3cr3t-one\\ncontinued-s3cr3t-two'; "
        "then 'tok-s3cr3t-one' alone, and file-s3cr3t-three"
    )
    connection.settled.set()
    reports = HealthReports(world.engine)
    await reports.report({"leaky": connection}, set())
    with world.engine.connect() as conn:
        written = read_statuses(conn)["leaky"]
    assert written.state == "down" and written.reported_by
    assert "s3cr3t" not in written.last_error and "[redacted]" in written.last_error
    assert written.last_error.startswith("LocalProtocolError: Illegal header value")


def test_redact_leaves_text_without_credentials_alone(monkeypatch):
    monkeypatch.delenv("TEST_UPSTREAM_UNSET", raising=False)
    up = Upstream("x", "stdio", command="server", env={"K": "env:TEST_UPSTREAM_UNSET"})
    assert redact("ConnectError: All connection attempts failed", up) == "ConnectError: All connection attempts failed"
