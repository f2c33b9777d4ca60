"""The MCP handlers over real HTTP: per-identity lists, decided calls, refusals."""

from __future__ import annotations

import json

import pytest
from mcp.shared.exceptions import MCPError
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.gateway.invocation import utcnow
from mcp_acl.policy import Identity, decide, visible
from mcp_acl.store import PolicyAdmin, PolicyLoader

from .harness import REPORTS_NOTE, connect, serve, text_of

ISSUER = "http://127.0.0.1:8000"


async def _lists(client) -> dict[str, list[str]]:
    return {
        "tools": sorted(t.name for t in (await client.list_tools()).tools),
        "resources": sorted(r.uri for r in (await client.list_resources()).resources),
        "templates": sorted(t.uri_template for t in (await client.list_resource_templates()).resource_templates),
        "prompts": sorted(p.name for p in (await client.list_prompts()).prompts),
    }


async def test_alice_and_bob_see_different_tools_resources_and_prompts(sqlite_world):
    admin = PolicyAdmin(sqlite_world.engine)
    admin.add_user("carol")
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            seen_by_alice = await _lists(alice)
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            seen_by_bob = await _lists(bob)
        async with connect(live.mcp_url, sqlite_world.token("carol")) as carol:
            seen_by_carol = await _lists(carol)
    assert seen_by_alice == {
        "tools": ["files.list", "files.read", "files.write", "sql.select"],
        "resources": ["file:///reports/q3.md"],
        "templates": [],
        "prompts": ["access-policy"],
    }
    assert seen_by_bob == {"tools": ["files.list"], "resources": [], "templates": [], "prompts": ["access-policy"]}
    assert seen_by_carol == {"tools": [], "resources": [], "templates": [], "prompts": []}


@pytest.mark.parametrize("user, client", [("alice", "mcp-acl-cli"), ("bob", "mcp-acl-cli"), ("alice", "ollama-agent")])
async def test_each_list_equals_what_the_policy_allows(sqlite_world, user, client):
    gateway = sqlite_world.gateway()
    policy = PolicyLoader(sqlite_world.engine).current()
    identity = Identity(user, client_id=client, issuer=ISSUER, scopes=frozenset({"mcp"}))
    now = utcnow()
    with serve(sqlite_world, gateway) as live:
        async with connect(live.mcp_url, sqlite_world.token(user, client)) as session:
            seen = await _lists(session)
    expected_tools = sorted(n for n in gateway.catalogue.tools if visible(policy, identity, f"tool:{n}", now))
    expected_resources = sorted(
        u for u in gateway.catalogue.list_resources() if decide(policy, identity, f"resource:{u}", None, now).allowed
    )
    assert seen["tools"] == expected_tools
    assert seen["resources"] == expected_resources
    assert seen["prompts"] == (["access-policy"] if decide(policy, identity, "prompt:access-policy", {}, now).allowed else [])


# Arguments each listed tool accepts under the test world's grants.
GOOD_ARGS = {
    "files.list": {}, "files.read": {"path": "reports/q3.md"}, "files.write": {"path": "drafts/a.md", "content": "a"},
    "sql.select": {"table": "orders"},
}


@pytest.mark.parametrize("user, client", [("alice", "mcp-acl-cli"), ("bob", "mcp-acl-cli"), ("alice", "ollama-agent")])
async def test_each_tool_list_agrees_with_mcp_acl_check(sqlite_world, user, client):
    gateway = sqlite_world.gateway()
    with serve(sqlite_world, gateway) as live:
        async with connect(live.mcp_url, sqlite_world.token(user, client)) as session:
            listed = {t.name for t in (await session.list_tools()).tools}

    def check(tool: str, args: dict) -> int:
        argv = ["check", f"user:{user}", f"tool:{tool}", "--client", client, "--args", json.dumps(args)]
        return CliRunner().invoke(app, [*argv, "--database", sqlite_world.database_url]).exit_code

    assert listed and set(listed) < set(gateway.catalogue.tools)  # some shown, some hidden: both branches run
    for tool in gateway.catalogue.tools:
        if tool in listed:
            assert check(tool, GOOD_ARGS[tool]) == 0, tool
        else:
            assert check(tool, GOOD_ARGS.get(tool, {})) == 1, tool


async def test_restricted_client_caps_what_the_user_sees(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice", "ollama-agent")) as agent:
            tools = sorted(t.name for t in (await agent.list_tools()).tools)
    assert tools == ["files.list", "files.read", "sql.select"]


async def test_service_token_sees_what_its_client_is_granted(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token(None, "ollama-agent")) as agent:
            seen = await _lists(agent)
            prompt = (await agent.get_prompt("access-policy")).messages[0].content.text
    assert seen == {
        "tools": ["files.list", "files.read", "sql.select"],
        "resources": ["file:///notes/todo.txt", "file:///reports/q3.md"],
        "templates": ["file:///{path}"],
        "prompts": ["access-policy"],
    }
    assert prompt.startswith("You are acting for the client ollama-agent (acting on its own behalf).")


async def test_tool_descriptions_carry_the_callers_limits(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            tools = {t.name: t.description for t in (await alice.list_tools()).tools}
    assert tools["files.read"].endswith(f"Limits for you: {REPORTS_NOTE}.")
    assert tools["sql.select"].endswith('Limits for you: only when args.table == "orders".')
    assert "Limits for you" not in tools["files.list"]


async def test_allowed_call_runs_the_tool(world):
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            result = await alice.call_tool("files.read", {"path": "reports/q3.md"})
    assert not result.is_error
    assert "Revenue grew 12%" in text_of(result)
    decision, outcome = world.audit_rows(kind="decision", target="tool:files.read")[0], world.audit_rows(kind="outcome")[0]
    assert (decision.decision, decision.subject, decision.grant_id) == ("allow", "alice", world.grants["alice-read"])
    assert (outcome.ref_id, outcome.outcome) == (decision.id, "ok")


async def test_refused_call_says_why_and_leaves_an_audit_row(world):
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            result = await alice.call_tool("files.read", {"path": "notes/todo.txt"})
    assert result.is_error
    assert text_of(result) == (
        f"Refused: tool:files.read is not allowed to user alice: grant #{world.grants['alice-read']} would allow it "
        'but its condition args.path.startsWith("reports/") does not hold for these arguments.'
    )
    [row] = world.audit_rows(kind="decision", target="tool:files.read")
    assert (row.kind, row.decision, row.action, row.subject, row.client_id) == (
        "decision", "deny", "tools/call", "alice", "mcp-acl-cli"
    )
    assert world.audit_rows(kind="outcome") == []


async def test_refused_write_does_not_touch_the_workspace(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            refused = await alice.call_tool("files.write", {"path": "reports/q3.md", "content": "gone"})
            allowed = await alice.call_tool("files.write", {"path": "drafts/plan.md", "content": "plan"})
    assert refused.is_error and text_of(refused).startswith("Refused:")
    assert not allowed.is_error
    workspace = sqlite_world.home / "workspace"
    assert (workspace / "reports" / "q3.md").read_text().startswith("# Q3")
    assert (workspace / "drafts" / "plan.md").read_text() == "plan"


async def test_hidden_tool_and_missing_tool_answer_alike(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            listed = [tool.name for tool in (await bob.list_tools()).tools]
            hidden = await bob.call_tool("sql.execute", {"statement": "DELETE FROM orders"})
            missing = await bob.call_tool("sql.exekute", {"statement": "DELETE FROM orders"})
    assert text_of(hidden) == f"No tool named sql.execute is available to you. Your tools: {', '.join(listed)}."
    dumped = missing.model_dump()
    dumped["content"][0]["text"] = dumped["content"][0]["text"].replace("sql.exekute", "sql.execute")
    assert dumped == hidden.model_dump()


async def test_arguments_are_checked_against_the_schema_once_allowed(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            result = await bob.call_tool("files.list", {"path": 3})
    assert result.is_error
    assert text_of(result) == "Invalid arguments for files.list: at path: 3 is not of type 'string'"


async def test_probing_calls_are_audited_hidden_missing_and_invalid_alike(sqlite_world):
    # An administrator sees a model probing: every call is a decision row, refused or not.
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            await bob.call_tool("sql.execute", {"statement": "DELETE FROM orders"})
            await bob.call_tool("shell.exec", {"command": "id"})
            await bob.call_tool("files.list", {"path": 3})
    decisions = [(r.target, r.decision) for r in sqlite_world.audit_rows(kind="decision", action="tools/call")]
    assert decisions == [("tool:sql.execute", "deny"), ("tool:shell.exec", "deny"), ("tool:files.list", "allow")]
    invalid = sqlite_world.audit_rows(kind="decision", target="tool:files.list")[0]
    assert [r.outcome for r in sqlite_world.audit_rows(kind="outcome", ref_id=invalid.id)] == ["error"]


async def test_resource_read_is_decided_and_hidden_ones_look_missing(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            allowed = await alice.read_resource("file:///reports/q3.md")
            with pytest.raises(MCPError) as hidden:
                await alice.read_resource("file:///notes/todo.txt")
            with pytest.raises(MCPError) as missing:
                await alice.read_resource("memo://nothing")
    assert allowed.contents[0].text.startswith("# Q3")
    assert str(hidden.value) == "Unknown resource: file:///notes/todo.txt"
    assert str(missing.value) == "Unknown resource: memo://nothing"
    assert hidden.value.error.code == missing.value.error.code
    assert [r.decision for r in sqlite_world.audit_rows(kind="decision", action="resources/read")] == ["allow", "deny", "deny"]


async def test_access_policy_prompt_states_what_the_caller_may_use(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice")) as alice:
            alice_text = (await alice.get_prompt("access-policy")).messages[0].content.text
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            bob_text = (await bob.get_prompt("access-policy")).messages[0].content.text
    assert "user alice (roles: analyst) through the client mcp-acl-cli" in alice_text
    assert f"- files.read: {REPORTS_NOTE}" in alice_text
    assert "- file:///reports/q3.md" in alice_text
    assert "files.read" not in bob_text and "- files.list" in bob_text
    assert 'starts with "Refused:"' in bob_text
    assert [r.decision for r in sqlite_world.audit_rows(kind="decision", target="prompt:access-policy")] == ["allow", "allow"]


async def test_prompt_without_a_grant_looks_missing(sqlite_world):
    PolicyAdmin(sqlite_world.engine).add_user("carol")
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("carol")) as carol:
            with pytest.raises(MCPError, match="^Unknown prompt: access-policy$"):
                await carol.get_prompt("access-policy")


async def test_2026_client_gets_the_same_lists_and_refusals(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("alice"), mode="legacy") as legacy:
            legacy_lists = await _lists(legacy)
            legacy_refusal = text_of(await legacy.call_tool("files.read", {"path": "notes/todo.txt"}))
        async with connect(live.mcp_url, sqlite_world.token("alice"), mode="auto") as modern:
            assert modern.protocol_version == "2026-07-28"
            modern_lists = await _lists(modern)
            modern_refusal = text_of(await modern.call_tool("files.read", {"path": "notes/todo.txt"}))
            modern_allowed = await modern.call_tool("files.read", {"path": "reports/q3.md"})
    assert modern_lists == legacy_lists
    assert modern_refusal == legacy_refusal
    assert not modern_allowed.is_error


async def test_legacy_handshake_announces_list_changed(sqlite_world):
    with serve(sqlite_world) as live:
        async with connect(live.mcp_url, sqlite_world.token("bob")) as bob:
            caps = bob.server_capabilities
    assert caps.tools.list_changed and caps.resources.list_changed and caps.prompts.list_changed
