"""Quotas and rates (`--limit`, `--rate`) through the real app and the SDK's client, on SQLite and PostgreSQL.

Counts are checked against the database and the audit log: exact under
concurrent calls from several sessions on two gateways (two replicas) over
the same database.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import anyio
from sqlalchemy import func, select
from typer.testing import CliRunner

from mcp_acl.audit.replay import replay
from mcp_acl.cli import app
from mcp_acl.policy import Effect
from mcp_acl.store import PolicyAdmin, PolicyLoader
from mcp_acl.store import tables as t

from .harness import connect, serve, text_of

# The gateway's clock, fixed mid-hour on a Wednesday: which window a call falls in never depends on when the test runs.
NOW = datetime(2026, 12, 9, 10, 30, 15, tzinfo=timezone.utc)


def _gateway(world):
    gateway = world.gateway()
    gateway.invoker.clock = lambda: NOW
    return gateway


def _usage(world, principal: str) -> dict[int, int]:
    u = t.grant_usage
    with world.engine.connect() as conn:
        rows = conn.execute(select(u.c.grant_id, func.sum(u.c.calls)).where(u.c.principal == principal, u.c.kind == "limit").group_by(u.c.grant_id))
        return {grant_id: int(calls) for grant_id, calls in rows}


async def test_a_limit_allows_that_many_calls_then_refuses_saying_when_it_resets(world):
    admin = PolicyAdmin(world.engine)
    admin.add_user("carol")
    grant = admin.add_grant("user:carol", "tool:files.list", limit="3/day")
    with serve(world, _gateway(world)) as live:
        async with connect(live.mcp_url, world.token("carol")) as carol:
            description = {tool.name: tool.description for tool in (await carol.list_tools()).tools}["files.list"]
            results = [await carol.call_tool("files.list", {}) for _ in range(4)]
    assert description.endswith("Limits for you: at most 3 calls a day.")
    assert [r.is_error for r in results] == [False, False, False, True]
    refusal = text_of(results[3])
    assert refusal.startswith(f"Refused: user carol has used up the quota for tool:files.list (3 calls a day, grant #{grant})")
    assert refusal.endswith("it resets at 2026-12-10 00:00:00 UTC.")
    decisions = world.audit_rows(kind="decision", target="tool:files.list", subject="carol")
    assert [(d.decision, d.grant_id) for d in decisions] == [("allow", grant)] * 3 + [("deny", grant)]
    assert decisions[3].reason == refusal.removeprefix("Refused: ").rstrip(".")
    assert _usage(world, "user:carol") == {grant: 3}
    # Replayed against the same policy nothing flips: the quota's refusal is not the policy's answer.
    replayed = replay(world.engine, PolicyLoader(world.engine).current())
    assert replayed.flips == [] and replayed.skipped >= 1
    shown = CliRunner().invoke(app, ["usage", "--user", "carol", "--all", "--json", "--database", world.database_url])
    assert shown.exit_code == 0, shown.output
    assert [(r["principal"], r["grant"], r["kind"], r["calls"], r["quota"]) for r in json.loads(shown.output)] == [
        ("user:carol", grant, "limit", 3, "3/day")
    ]


async def test_refused_calls_and_calls_other_grants_allow_are_not_counted(world):
    admin = PolicyAdmin(world.engine)
    admin.add_user("carol")
    limited = admin.add_grant("user:carol", "tool:files.read", limit="2/day")
    with serve(world, _gateway(world)) as live:
        async with connect(live.mcp_url, world.token("carol")) as carol:
            # A deny beats the limited allow: refused and never counted.
            deny = admin.add_grant("user:carol", "tool:files.read", effect=Effect.DENY, condition='args.path.startsWith("notes/")')
            refused = await carol.call_tool("files.read", {"path": "notes/todo.txt"})
            allowed = await carol.call_tool("files.read", {"path": "reports/q3.md"})
            # An unlimited allow that also holds is used instead of the limited one.
            admin.add_grant("user:carol", "tool:files.read", condition='args.path == "reports/q3.md"')
            more = [await carol.call_tool("files.read", {"path": "reports/q3.md"}) for _ in range(3)]
    assert refused.is_error and f"grant #{deny}" in text_of(refused)
    assert not allowed.is_error and not any(r.is_error for r in more)
    assert _usage(world, "user:carol") == {limited: 1}


async def test_the_next_limited_grant_takes_over_when_the_first_is_used_up(world):
    admin = PolicyAdmin(world.engine)
    admin.add_user("carol")
    first = admin.add_grant("user:carol", "tool:files.list", limit="1/day")
    second = admin.add_grant("user:carol", "tool:files.list", limit="2/hour")
    with serve(world, _gateway(world)) as live:
        async with connect(live.mcp_url, world.token("carol")) as carol:
            results = [await carol.call_tool("files.list", {}) for _ in range(4)]
    assert [r.is_error for r in results] == [False, False, False, True]
    assert [d.grant_id for d in world.audit_rows(kind="decision", subject="carol", decision="allow")] == [first, second, second]
    # The refusal names the grant that frees up first: the hourly one.
    assert f"(2 calls an hour, grant #{second})" in text_of(results[3])


async def test_a_rate_on_a_restricted_clients_grant_is_counted_per_user(world):
    admin = PolicyAdmin(world.engine)
    for unlimited in admin.list_grants("client:ollama-agent", "tool:files.list"):
        admin.revoke(unlimited.id)
    ceiling = admin.add_grant("client:ollama-agent", "tool:files.list", rate="2/min")
    with serve(world, _gateway(world)) as live:
        async with connect(live.mcp_url, world.token("alice", "ollama-agent")) as alice:
            by_alice = [await alice.call_tool("files.list", {}) for _ in range(3)]
            description = {tool.name: tool.description for tool in (await alice.list_tools()).tools}["files.list"]
        async with connect(live.mcp_url, world.token("bob", "ollama-agent")) as bob:
            by_bob = await bob.call_tool("files.list", {})
        async with connect(live.mcp_url, world.token("alice", "mcp-acl-cli")) as unrestricted:
            direct = await unrestricted.call_tool("files.list", {})
    assert [r.is_error for r in by_alice] == [False, False, True]
    assert "the restricted client ollama-agent has used up the quota" in text_of(by_alice[2])
    assert "at most 2 calls a minute" in description
    assert not by_bob.is_error and not direct.is_error
    with world.engine.connect() as conn:
        counted = dict(conn.execute(select(t.grant_usage.c.principal, t.grant_usage.c.calls).where(t.grant_usage.c.grant_id == ceiling)).all())
    assert counted == {"user:alice": 2, "user:bob": 1}


async def test_the_access_policy_prompt_states_the_limit(world):
    admin = PolicyAdmin(world.engine)
    admin.add_user("carol")
    admin.add_grant("user:carol", "tool:files.list", limit="100/day", rate="10/min", note="lists the workspace")
    admin.add_grant("user:carol", "prompt:access-policy")
    with serve(world, _gateway(world)) as live:
        async with connect(live.mcp_url, world.token("carol")) as carol:
            prompt = (await carol.get_prompt("access-policy")).messages[0].content.text
    assert "- files.list: lists the workspace; at most 100 calls a day and 10 calls a minute" in prompt


async def test_concurrent_calls_on_two_replicas_are_counted_exactly(world):
    admin = PolicyAdmin(world.engine)
    users = ("u1", "u2")
    for user in users:
        admin.add_user(user)
    grant = admin.add_grant("role:analyst", "tool:files.list", limit="7/day")
    for user in users:
        admin.assign(user, "analyst")
    admin.revoke(world.grants["alice-list"])  # the unlimited allow would make the quota moot
    calls_each, sessions_each = 8, 3
    outcomes: dict[str, list[bool]] = {user: [] for user in users}
    with serve(world, _gateway(world)) as first, serve(world, _gateway(world)) as second:

        async def session(url: str, user: str) -> None:
            async with connect(url, world.token(user)) as client:
                async with anyio.create_task_group() as calls:
                    for _ in range(calls_each):
                        calls.start_soon(one_call, client, user)

        async def one_call(client, user: str) -> None:
            outcomes[user].append(not (await client.call_tool("files.list", {})).is_error)

        async with anyio.create_task_group() as group:
            for user in users:
                for n in range(sessions_each):
                    group.start_soon(session, (first, second)[n % 2].mcp_url, user)
    for user in users:
        assert len(outcomes[user]) == calls_each * sessions_each
        assert sum(outcomes[user]) == 7, user
        allows = world.audit_rows(kind="decision", subject=user, decision="allow")
        assert len(allows) == 7 and all(a.grant_id == grant for a in allows)
        assert _usage(world, f"user:{user}") == {grant: 7}


async def test_a_counted_call_drops_its_own_counters_windows_that_ended_over_31_days_ago(world):
    admin = PolicyAdmin(world.engine)
    admin.add_user("carol")
    grant = admin.add_grant("user:carol", "tool:files.list", limit="3/day")
    day, now = 86400, int(NOW.timestamp())
    today = now - now % day
    old = {("user:carol", today - 40 * day), ("user:carol", today - 39 * day), ("user:dave", today - 40 * day)}
    kept = {("user:carol", today - 30 * day)}
    with world.engine.begin() as conn:
        conn.execute(t.grant_usage.insert(), [
            {"principal": who, "grant_id": grant, "kind": "limit", "window_start": start, "period": day, "calls": 2}
            for who, start in old | kept
        ])
    with serve(world, _gateway(world)) as live:
        async with connect(live.mcp_url, world.token("carol")) as carol:
            assert not (await carol.call_tool("files.list", {})).is_error
    with world.engine.connect() as conn:
        left = set(conn.execute(select(t.grant_usage.c.principal, t.grant_usage.c.window_start)).all())
    # carol's windows that ended more than 31 days ago went with her call; the one of 30 days ago stays,
    # and so does dave's old window: it goes when his own counter next counts.
    assert left == kept | {("user:carol", today), ("user:dave", today - 40 * day)}
