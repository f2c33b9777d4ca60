"""The agent loop end to end: the real gateway over the demo seed, and the Ollama double.

The gateway is `mcp_acl.app.create_app` under uvicorn on loopback with the
demo policy, real signed tokens from the embedded issuer, the real built-in
tools and the real audit log; the agent reaches it through the MCP SDK
client and reaches the double through the `ollama` client. Each test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_acl.agent import (
    Agent,
    AgentSettings,
    CatalogueEvent,
    NoticeEvent,
    Outcome,
    StaticToken,
    ToolCallEvent,
    run_task,
)
from mcp_acl.agent.messages import FALLBACK_SYSTEM, prompt_text
from mcp_acl.agent.tool_format import ollama_tools
from mcp_acl.store import PolicyAdmin
from tests.support.ollama_double import call, calls, say

Q3 = "reports/q3-sales.md"
Q4 = "reports/q4-sales.md"


def agent(demo, gateway_url, ollama_url, user: str, on_event=None, **kwargs) -> Agent:
    settings = AgentSettings("qwen3:4b", gateway_url=gateway_url, ollama_url=ollama_url, **kwargs)
    return Agent(settings, StaticToken(demo.token(user)), on_event=on_event)


async def test_alice_call_runs_and_the_file_reaches_the_model(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", path=Q3), say("Revenue was 41,200 EUR."))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("How did Q3 go?")
    assert [c.outcome for c in result.calls] == [Outcome.ALLOWED]
    told = double.chats[1]["messages"][-1]
    assert told["role"] == "tool" and told["tool_name"] == "files.read" and "Revenue: 41,200 EUR" in told["content"]
    assert demo.tool_calls_audited("alice") == [("tool:files.read", "allow")]


async def test_allowed_call_whose_tool_fails_is_a_tool_error_not_a_refusal(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", path="reports/q9-sales.md"), say("There is no Q9 report."))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("How did Q9 go?")
    assert [c.outcome for c in result.calls] == [Outcome.TOOL_ERROR]
    assert double.chats[1]["messages"][-1]["content"].startswith("ERROR: the tool failed: ")
    assert demo.tool_calls_audited("alice") == [("tool:files.read", "allow")]


async def test_bob_same_call_is_refused_by_the_gateway_and_the_model_reads_why(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", path=Q3), say("I may not read that."))
    async with agent(demo, gateway_url, ollama_url, "bob") as a:
        assert "files.read" in [tool.name for tool in a.tools]
        result = await a.ask("How did Q3 go?")
    assert [c.outcome for c in result.calls] == [Outcome.REFUSED]
    told = double.chats[1]["messages"][-1]
    assert told["role"] == "tool" and told["tool_name"] == "files.read"
    assert told["content"].startswith("ERROR: the gateway refused this call. Refused: ")
    assert "41,200" not in told["content"]
    assert demo.tool_calls_audited("bob") == [("tool:files.read", "deny")]


@pytest.mark.parametrize("user", ["alice", "bob"])
async def test_offered_tools_are_the_filtered_catalogue_and_system_is_the_access_policy(
        demo, gateway_url, double, ollama_url, user):
    double.add(say("hello"))
    async with agent(demo, gateway_url, ollama_url, user) as a:
        await a.ask("hi")
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {demo.token(user)}"}) as http:
        async with Client(streamable_http_client(gateway_url, http_client=http), cache=None) as client:
            listed = (await client.list_tools()).tools
            policy = prompt_text(await client.get_prompt("access-policy"))
    assert double.chats[0]["tools"] == ollama_tools(listed)
    assert double.chats[0]["messages"][0] == {"role": "system", "content": policy}


async def test_made_up_tool_never_reaches_the_gateway(demo, gateway_url, double, ollama_url):
    double.add(call("shell.exec", command="cat /etc/passwd"), say("no such tool"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("look around")
    assert result.calls[0].outcome == Outcome.BLOCKED
    assert double.chats[1]["messages"][-1]["content"].startswith(
        'ERROR: there is no tool named "shell.exec". The tools you have are: ')
    assert demo.tool_calls_audited("alice") == []


async def test_hidden_tool_is_answered_like_a_made_up_one_and_never_reaches_the_gateway(
        demo, gateway_url, double, ollama_url):
    double.add(call("sql.execute", statement="DELETE FROM orders"), say("cannot"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("tidy the orders")
    assert result.calls[0].outcome == Outcome.BLOCKED
    assert double.chats[1]["messages"][-1]["content"].startswith('ERROR: there is no tool named "sql.execute". ')
    assert demo.tool_calls_audited("alice") == []


async def test_bad_arguments_are_answered_and_never_reach_the_gateway(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", path=42), say("oops"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("read")
    assert result.calls[0].outcome == Outcome.BLOCKED
    assert "path: 42 is not of type 'string'" in double.chats[1]["messages"][-1]["content"]
    assert demo.tool_calls_audited("alice") == []


async def test_repeated_call_ends_the_task_after_max_repeats(demo, gateway_url, double, ollama_url):
    double.add(*[call("files.read", path=Q3)] * 4)
    async with agent(demo, gateway_url, ollama_url, "alice", max_repeats=3) as a:
        result = await a.ask("read it")
    assert result.answer is None and "more than 3 times" in result.stopped
    assert demo.tool_calls_audited("alice") == [("tool:files.read", "allow")] * 3


async def test_runaway_loop_ends_at_the_round_cap(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", path=Q3), call("files.read", path=Q4), call("files.list", path="reports"))
    async with agent(demo, gateway_url, ollama_url, "alice", max_rounds=3) as a:
        result = await a.ask("read everything")
    assert result.stopped.startswith("stopped after 3 rounds") and len(double.chats) == 3
    assert demo.tool_calls_audited("alice") == [("tool:files.read", "allow")] * 2


async def test_grant_revoked_mid_conversation_refuses_the_next_call_and_shrinks_the_tools(
        demo, gateway_url, double, ollama_url):
    double.add(calls(("files.read", {"path": Q3}), ("files.read", {"path": Q4})), say("Only Q3."))
    read_grant = demo.grant_id("role:analyst", "tool:files.read")
    events: list = []

    async def on_event(event) -> None:
        events.append(event)
        if isinstance(event, ToolCallEvent) and event.outcome == Outcome.ALLOWED:
            PolicyAdmin(demo.engine, actor="test").revoke(read_grant)

    async with agent(demo, gateway_url, ollama_url, "alice", on_event=on_event) as a:
        result = await a.ask("Compare Q3 and Q4.")
    assert [c.outcome for c in result.calls] == [Outcome.ALLOWED, Outcome.REFUSED]
    assert demo.tool_calls_audited("alice") == [("tool:files.read", "allow"), ("tool:files.read", "deny")]
    assert "files.read" in [tool["function"]["name"] for tool in double.chats[0]["tools"]]
    assert "files.read" not in [tool["function"]["name"] for tool in double.chats[1]["tools"]]
    assert any(isinstance(e, CatalogueEvent) and "files.read" in e.removed for e in events)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_list_changed_from_the_gateway_shrinks_the_tools_before_the_next_task(
        demo, gateway_url, double, ollama_url, mode):
    double.add(say("first"), say("second"))
    async with agent(demo, gateway_url, ollama_url, "alice", mcp_mode=mode) as a:
        await a.ask("one")
        PolicyAdmin(demo.engine, actor="test").revoke(demo.grant_id("role:analyst", "tool:sql.select"))
        with anyio.fail_after(15):  # a hang guard: the gateway polls the revision about once a second
            await a.session.changed.wait()
        await a.ask("two")
    before = [tool["function"]["name"] for tool in double.chats[0]["tools"]]
    after = [tool["function"]["name"] for tool in double.chats[1]["tools"]]
    assert "sql.select" in before and after == [name for name in before if name != "sql.select"]
    assert double.chats[1]["messages"][0]["content"] != double.chats[0]["messages"][0]["content"]


async def test_refused_policy_prompt_falls_back_to_a_generic_system_message_and_says_so(
        demo, gateway_url, double, ollama_url):
    PolicyAdmin(demo.engine, actor="test").revoke(demo.grant_id("role:analyst", "prompt:access-policy"))
    double.add(say("hi"))
    events: list = []
    async with agent(demo, gateway_url, ollama_url, "alice", on_event=events.append) as a:
        await a.ask("hi")
    assert double.chats[0]["messages"][0] == {"role": "system", "content": FALLBACK_SYSTEM}
    assert any(isinstance(e, NoticeEvent) and "access-policy" in e.text for e in events)


async def test_conversation_carries_on_and_reset_forgets_it(demo, gateway_url, double, ollama_url):
    double.add(say("a"), say("b"), say("c"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        await a.ask("one")
        await a.ask("two")
        a.reset()
        await a.ask("three")
    assert [m["content"] for m in double.chats[1]["messages"][1:]] == ["one", "a", "two"]
    assert [m["content"] for m in double.chats[2]["messages"][1:]] == ["three"]


async def test_run_task_is_one_task_with_a_fresh_agent(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", path=Q3), say("done"))
    seen: list = []
    result = await run_task("q3?", model="qwen3:4b", token=demo.token("alice"), gateway_url=gateway_url,
                            ollama_url=ollama_url, on_event=seen.append)
    assert result.answer == "done" and [e.outcome for e in seen if isinstance(e, ToolCallEvent)] == [Outcome.ALLOWED]
