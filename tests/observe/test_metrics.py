"""Prometheus metrics at /metrics: off by default, closed label sets, no tokens or arguments."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway.harness import LiveServer, connect, text_of
from mcp_acl.app import create_app
from mcp_acl.store import tables as t

SECRET_PATH = "reports/q3-secret-argument.md"


def samples(body: str) -> dict[tuple[str, tuple], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_are_off_unless_asked_for(sqlite_world):
    with LiveServer(create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway())) as live:
        async with httpx2.AsyncClient() as http:
            answer = await http.get(f"{live.base}/metrics")
    assert answer.status_code == 404


async def test_decisions_calls_and_sessions_are_counted_with_bounded_labels(sqlite_world):
    token = sqlite_world.token("alice")
    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway(), metrics=True)
    with LiveServer(app) as live:
        async with connect(live.mcp_url, token) as alice, httpx2.AsyncClient() as http:
            await alice.list_tools()
            allowed = await alice.call_tool("files.list", {})
            refused = await alice.call_tool("files.read", {"path": "hr/" + SECRET_PATH})
            unknown = await alice.call_tool("made.up-name-" + "x" * 40, {"path": SECRET_PATH})
            await alice.read_resource("file:///reports/q3.md")
            during = (await http.get(f"{live.base}/metrics")).text
    with sqlite_world.engine.connect() as conn:
        revision = conn.execute(select(t.policy_revision.c.revision)).scalar()
    assert not allowed.is_error and refused.is_error and unknown.is_error, text_of(unknown)
    found = samples(during)

    def value(name: str, **labels: str) -> float:
        return found.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("mcp_acl_decisions_total", action="tools/call", result="allowed") == 1
    assert value("mcp_acl_decisions_total", action="tools/call", result="refused") == 1
    assert value("mcp_acl_decisions_total", action="tools/call", result="unknown") == 1
    assert value("mcp_acl_decisions_total", action="resources/read", result="allowed") == 1
    assert value("mcp_acl_decision_seconds_count", action="tools/call") == 3
    assert value("mcp_acl_audit_write_seconds_count") == 4
    assert value("mcp_acl_call_seconds_count", action="tools/call", outcome="ok") == 1
    assert value("mcp_acl_call_seconds_count", action="tools/call", outcome="error") == 2
    assert value("mcp_acl_tool_calls_total", tool="files.list", outcome="ok") == 1
    assert value("mcp_acl_tool_calls_total", tool="files.read", outcome="error") == 1
    # A name the caller made up is not a label value of its own.
    assert value("mcp_acl_tool_calls_total", tool="(unknown)", outcome="error") == 1
    assert "made.up-name" not in during
    assert value("mcp_acl_sessions_open") == 1
    assert value("mcp_acl_calls_running") == 0
    assert value("mcp_acl_policy_revision") == revision
    assert value("mcp_acl_policy_reload_seconds_count") >= 1
    # Nothing of the caller's: no token, no argument, no subject.
    assert token not in during and token.split(".")[2] not in during
    assert SECRET_PATH not in during and "alice" not in during


async def test_a_policy_change_is_seen_in_the_revision_and_the_list_changed_timing(sqlite_world):
    from mcp_acl.store import PolicyAdmin

    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway(), metrics=True)
    notified = []
    with LiveServer(app) as live:
        async with connect(
            live.mcp_url, sqlite_world.token("bob"), message_handler=_collect(notified),
        ) as bob, httpx2.AsyncClient() as http:
            await bob.list_tools()
            before = samples((await http.get(f"{live.base}/metrics")).text)
            PolicyAdmin(sqlite_world.engine, actor="test").add_grant("role:intern", "tool:files.read")
            import anyio

            with anyio.fail_after(30):
                while not notified:
                    await anyio.sleep(0.05)
            after = samples((await http.get(f"{live.base}/metrics")).text)
    assert after[("mcp_acl_policy_revision", ())] == before[("mcp_acl_policy_revision", ())] + 1
    assert after[("mcp_acl_commit_signals_total", ())] >= 1
    assert after[("mcp_acl_list_changed_seconds_count", ())] >= 1


def _collect(seen: list):
    async def handler(message) -> None:
        seen.append(message)

    return handler
