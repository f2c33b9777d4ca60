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
    SettingsError,
    StaticToken,
    ToolCallEvent,
    run_task,
)
from mcp_acl.agent.messages import FALLBACK_SYSTEM, prompt_text
from mcp_acl.agent.tool_format import ollama_tools
from mcp_acl.store import PolicyAdmin
from tests.support.ollama_double import call, call_raw, calls, say

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


async def test_made_up_tool_goes_to_the_gateway_which_refuses_and_audits_it(demo, gateway_url, double, ollama_url):
    double.add(call("shell.exec", command="cat /etc/passwd"), say("no such tool"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("look around")
        tools = ", ".join(tool.name for tool in a.tools)
    assert result.calls[0].outcome == Outcome.REFUSED
    assert double.chats[1]["messages"][-1]["content"] == (
        f"ERROR: the gateway refused this call. No tool named shell.exec is available to you. Your tools: {tools}.")
    assert demo.tool_calls_audited("alice") == [("tool:shell.exec", "deny")]


async def test_hidden_tool_is_answered_like_a_made_up_one_and_audited(demo, gateway_url, double, ollama_url):
    double.add(call("sql.execute", statement="DELETE FROM orders"), call("sql.exekute", statement="x"), say("cannot"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("tidy the orders")
    assert [c.outcome for c in result.calls] == [Outcome.REFUSED, Outcome.REFUSED]
    hidden, missing = double.chats[1]["messages"][-1]["content"], double.chats[2]["messages"][-1]["content"]
    assert hidden.startswith("ERROR: the gateway refused this call. No tool named sql.execute is available to you.")
    assert missing == hidden.replace("sql.execute", "sql.exekute", 1)
    assert demo.tool_calls_audited("alice") == [("tool:sql.execute", "deny"), ("tool:sql.exekute", "deny")]


async def test_bad_arguments_go_to_the_gateway_which_audits_them_and_the_model_reads_why(
        demo, gateway_url, double, ollama_url):
    double.add(call("sql.describe", table=42), say("oops"))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("read")
    assert result.calls[0].outcome == Outcome.INVALID_ARGUMENTS
    told = double.chats[1]["messages"][-1]["content"]
    assert told.startswith("ERROR: the gateway did not run this call. Invalid arguments for sql.describe: ")
    assert "42 is not of type 'string'" in told and told.endswith("Call it again with corrected arguments.")
    assert demo.tool_calls_audited("alice") == [("tool:sql.describe", "allow")]


async def test_arguments_sent_as_a_json_string_are_parsed_and_run(demo, gateway_url, double, ollama_url):
    double.add(call("files.read", f'{{"path": "{Q3}"}}'), say("Revenue was 41,200 EUR."))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("How did Q3 go?")
    assert [(c.outcome, c.arguments) for c in result.calls] == [(Outcome.ALLOWED, {"path": Q3})]
    assert demo.tool_calls_audited("alice") == [("tool:files.read", "allow")]


@pytest.mark.parametrize(("wire", "what"), [("null", "null"), ('"path=a.md"', "a string that is not JSON")])
async def test_arguments_that_are_no_object_are_answered_in_one_sentence_and_the_task_goes_on(
        demo, gateway_url, double, ollama_url, wire, what):
    double.add(call_raw("files.read", wire), say("I will ask differently."))
    async with agent(demo, gateway_url, ollama_url, "alice") as a:
        result = await a.ask("read")
    assert result.answer == "I will ask differently." and result.calls[0].outcome == Outcome.BLOCKED
    assert double.chats[1]["messages"][-1]["content"] == (
        f"ERROR: not run: the arguments for files.read must be a JSON object, but they were {what}, "
        "so call it again with an object.")
    # MCP cannot carry such arguments, so there was no gateway call to audit.
    assert demo.tool_calls_audited("alice") == []


async def test_calls_beyond_the_per_turn_cap_are_not_run_and_the_model_is_told(demo, gateway_url, double, ollama_url):
    many = [("files.read", {"path": f"reports/r{i}.md"}) for i in range(12)]
    double.add(calls(*many), say("Enough."))
    events: list = []
    async with agent(demo, gateway_url, ollama_url, "alice", on_event=events.append, max_calls_per_turn=5) as a:
        result = await a.ask("read them all")
    assert [c.outcome for c in result.calls][5:] == [Outcome.NOT_RUN] * 7
    assert len(demo.tool_calls_audited("alice")) == 5
    told = [m["content"] for m in double.chats[1]["messages"] if m["role"] == "tool"]
    assert len(told) == 12 and told[5:] == [
        "ERROR: not run: at most 5 tool calls are run per turn, so make this call again in your next turn "
        "if you still need it."] * 7
    assert any(isinstance(e, NoticeEvent) and "only the first 5 ran" in e.text for e in events)


def test_the_per_turn_cap_is_small_by_default_and_must_be_positive():
    assert AgentSettings("qwen3:4b").max_calls_per_turn == 8
    with pytest.raises(SettingsError, match="max-calls-per-turn must be at least 1"):
        AgentSettings("qwen3:4b", max_calls_per_turn=0)


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
    # Not "Unknown tool", which reads like a typo: the model learns what it can use instead.
    assert result.calls[1].told_model.startswith(
        "ERROR: the gateway refused this call. No tool named files.read is available to you. Your tools: files.list")
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
