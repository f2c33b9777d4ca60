"""`mcp-acl grant --limit/--rate`, `grants`, `usage`, and policy files keeping quotas."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from mcp_acl.audit import AuditLog
from mcp_acl.gateway.quotas import quota_charge
from mcp_acl.policy import Identity, decide
from mcp_acl.store import PolicyLoader, make_engine

@pytest.fixture
def seeded(cli):
    cli.ok("role", "add", "analyst")
    cli.ok("user", "add", "alice", "--role", "analyst")
    cli.ok("client", "add", "svc")
    return cli


def _call(url: str, identity: Identity, target: str) -> bool:
    # One admission as the gateway makes it: decide, then count in the audit append.
    engine = make_engine(url)
    try:
        # The clock of the call itself: `usage` shows the windows current when it runs, moments later.
        now = datetime.now(timezone.utc)
        policy = PolicyLoader(engine).current()
        decision, charge = quota_charge(policy, identity, target, {}, now, decide(policy, identity, target, {}, now))
        AuditLog(engine).record_decision(
            session_id=None, identity=identity, action="tools/call", target=target, args={},
            decision=decision, latency_ms=0.0, **({"quota": charge} if charge else {}),
        )
        return decision.allowed and (charge is None or charge.refusal is None)
    finally:
        engine.dispose()


def test_grant_stores_limit_and_rate_written_one_way(seeded):
    gid = int(seeded.ok("grant", "role:analyst", "tool:sql.query", "--limit", "100 / Days", "--rate", "10/m").strip())
    listed = json.loads(seeded.ok("grants", "--json"))
    assert [(g["id"], g["limit"], g["rate"]) for g in listed] == [(gid, "100/day", "10/min")]
    table = seeded.ok("grants")
    assert "limit 100/day rate 10/min" in table
    assert f"#{gid} allow role:analyst tool:sql.query limit 100/day rate 10/min" in seeded.ok("check", "user:alice", "tool:sql.query")


@pytest.mark.parametrize("args, says", [
    (("--limit", "100"), "a quota is CALLS/UNIT such as 100/day"),
    (("--limit", "0/day"), "from 1 to"),
    (("--rate", "5/fortnight"), "a quota is CALLS/UNIT"),
    (("--deny", "--limit", "5/day"), "a deny cannot have a limit"),
])
def test_a_bad_quota_is_one_line_and_nothing_is_written(seeded, args, says):
    assert says in seeded.rejects("grant", "role:analyst", "tool:x", *args)


def test_usage_shows_the_calls_counted_per_principal_grant_and_window(seeded):
    gid = int(seeded.ok("grant", "role:analyst", "tool:x", "--limit", "2/day").strip())
    sid = int(seeded.ok("grant", "client:svc", "tool:x", "--rate", "5/min").strip())
    alice, svc = Identity("alice", "app"), Identity(None, "svc")
    assert [_call(seeded.url, alice, "tool:x") for _ in range(3)] == [True, True, False]
    assert _call(seeded.url, svc, "tool:x")
    # Every window kept (--all): the content never depends on a minute turning between the calls and here.
    rows = json.loads(seeded.ok("usage", "--all", "--json"))
    assert [(r["principal"], r["grant"], r["kind"], r["calls"], r["quota"]) for r in rows] == [
        ("client:svc", sid, "rate", 1, "5/min"), ("user:alice", gid, "limit", 2, "2/day"),
    ]
    assert rows[1]["resets_at"].endswith("T00:00:00+00:00")
    assert "user:alice" in [r["principal"] for r in json.loads(seeded.ok("usage", "--json"))]  # today's window is current
    assert [r["principal"] for r in json.loads(seeded.ok("usage", "--user", "alice", "--json"))] == ["user:alice"]
    # svc's window is a minute long: filtered over every window kept, or a minute turning under a loaded run empties it.
    assert [r["principal"] for r in json.loads(seeded.ok("usage", "--client", "svc", "--all", "--json"))] == ["client:svc"]
    table = seeded.ok("usage")
    assert "user:alice" in table and "2/day" in table
    assert "no calls counted" in seeded.ok("usage", "--user", "nobody")
    assert "give one of them" in seeded.rejects("usage", "--user", "alice", "--client", "svc")


def test_policy_files_keep_quotas_on_a_round_trip(seeded, cli_for, tmp_path):
    seeded.ok("grant", "role:analyst", "tool:x", "--limit", "3/hour", "--rate", "1/sec", "--note", "x sparingly")
    exported = seeded.ok("policy", "export")
    assert "limit: 3/hour" in exported and "rate: 1/sec" in exported
    path = tmp_path / "policy.yaml"
    path.write_text(exported)
    other = cli_for(f"sqlite:///{tmp_path / 'other.db'}")
    other.ok("init")
    other.ok("policy", "import", str(path))
    assert [(g["limit"], g["rate"], g["note"]) for g in json.loads(other.ok("grants", "--json"))] == [("3/hour", "1/sec", "x sparingly")]
    assert other.ok("policy", "export").split("\n", 1)[1] == exported.split("\n", 1)[1]


def test_a_policy_file_with_a_bad_quota_is_refused_by_name(seeded, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("grants:\n  - {principal: role:analyst, target: tool:x, limit: lots}\n")
    assert "grants[0].limit: a quota is CALLS/UNIT" in seeded.rejects("policy", "import", str(path))
