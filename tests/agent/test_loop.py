"""The agent loop against a real MCP server and the Ollama double: guards, refusals, changes."""

from __future__ import annotations

import anyio
import pytest

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
from mcp_acl.agent.messages import FALLBACK_SYSTEM
from mcp_acl.agent.tool_format import ollama_tools
from tests.support.ollama_double import call, calls, say


def settings(ollama_server, mini_server, **kwargs) -> AgentSettings:
    return AgentSettings("qwen3:4b", gateway_url=mini_server.url + "/mcp", ollama_url=ollama_server.url, **kwargs)


def agent(ollama_server, mini_server, token: str, events: list | None = None, **kwargs) -> Agent:
    return Agent(settings(ollama_server, mini_server, **kwargs), StaticToken(token),
                 on_event=events.append if events is not None else None)


READ_Q3 = call("notes.read", path="reports/q3.md")


async def test_alice_call_runs_and_its_result_reaches_the_model(double, ollama_server, mini, mini_server):
    double.add(READ_Q3, say("Q3 grew 12%."))
    async with agent(ollama_server, mini_server, "tok-alice") as a:
        result = await a.ask("How did Q3 go?")
    assert result.answer == "Q3 grew 12%." and [c.outcome for c in result.calls] == [Outcome.ALLOWED]
    assert mini.handler_runs["notes.read"] == 1
    assert double.chats[1]["messages"][-1] == {"role": "tool", "content": "Q3 revenue grew 12%.",
                                              "tool_name": "notes.read"}


async def test_bob_same_call_is_refused_and_the_refusal_reaches_the_model(double, ollama_server, mini, mini_server):
    double.add(READ_Q3, say("I may not read that."))
    async with agent(ollama_server, mini_server, "tok-bob") as a:
        result = await a.ask("How did Q3 go?")
    assert [c.outcome for c in result.calls] == [Outcome.REFUSED]
    assert mini.handler_runs["notes.read"] == 0 and mini.decisions == [("bob", "notes.read", False)]
    told = double.chats[1]["messages"][-1]
    assert told["role"] == "tool" and told["tool_name"] == "notes.read"
    assert told["content"] == ("ERROR: the gateway refused this call. Refused: bob may not call "
                               "notes.read with these arguments (bob reads public/ notes only).")


async def test_an_allowed_call_whose_tool_fails_is_a_tool_error(double, ollama_server, mini, mini_server):
    double.add(call("notes.read", path="reports/q9.md"), say("no such report"))
    async with agent(ollama_server, mini_server, "tok-alice") as a:
        result = await a.ask("q9?")
    assert [c.outcome for c in result.calls] == [Outcome.TOOL_ERROR]
    assert double.chats[1]["messages"][-1]["content"] == "ERROR: the tool failed: There is no note reports/q9.md."


async def test_offered_tools_are_the_catalogue_and_the_system_message_is_the_policy_prompt(
        double, ollama_server, mini, mini_server):
    double.add(say("hello"))
    async with agent(ollama_server, mini_server, "tok-alice") as a:
        await a.ask("hi")
        assert [t.name for t in a.tools] == [t.name for t in mini.visible("alice")]
    assert double.chats[0]["tools"] == ollama_tools(mini.visible("alice"))
    assert double.chats[0]["messages"][0] == {
        "role": "system",
        "content": "You act for alice. You may use: notes.list, notes.read. A refused call says why; do not retry it."}


async def test_made_up_tool_is_answered_with_the_tool_list_and_never_sent(double, ollama_server, mini, mini_server):
    double.add(call("shell.exec", cmd="rm -rf /"), say("sorry"))
    async with agent(ollama_server, mini_server, "tok-alice") as a:
        result = await a.ask("clean up")
    assert [c.outcome for c in result.calls] == [Outcome.BLOCKED] and mini.decisions == []
    assert double.chats[1]["messages"][-1]["content"] == (
        'ERROR: there is no tool named "shell.exec". The tools you have are: notes.list, notes.read. '
        "Call one of these, or answer without a tool.")


async def test_hidden_tool_is_answered_like_a_made_up_one(double, ollama_server, mini, mini_server):
    double.add(call("notes.write", path="x.md", text="hi"), say("cannot"))
    async with agent(ollama_server, mini_server, "tok-bob") as a:
        await a.ask("write")
    assert mini.decisions == [] and mini.handler_runs["notes.write"] == 0
    assert double.chats[1]["messages"][-1]["content"].startswith('ERROR: there is no tool named "notes.write". ')


async def test_bad_arguments_are_answered_with_what_is_wrong(double, ollama_server, mini, mini_server):
    double.add(call("notes.read", path=5), say("oops"))
    async with agent(ollama_server, mini_server, "tok-alice") as a:
        result = await a.ask("read")
    assert result.calls[0].outcome == Outcome.BLOCKED and mini.decisions == []
    assert "path: 5 is not of type 'string'" in double.chats[1]["messages"][-1]["content"]


async def test_same_call_made_too_often_ends_the_task(double, ollama_server, mini, mini_server):
    double.add(*[READ_Q3] * 4)
    async with agent(ollama_server, mini_server, "tok-alice", max_repeats=3) as a:
        result = await a.ask("read it again and again")
    assert result.answer is None and "same call to notes.read more than 3 times" in result.stopped
    assert mini.handler_runs["notes.read"] == 3 and len(double.chats) == 4
    assert result.calls[-1].outcome == Outcome.NOT_RUN


async def test_runaway_loop_stops_at_the_round_cap(double, ollama_server, mini, mini_server):
    double.add(*[call("notes.read", path=f"n{i}.md") for i in range(3)])
    async with agent(ollama_server, mini_server, "tok-alice", max_rounds=3) as a:
        result = await a.ask("keep going")
    assert result.stopped.startswith("stopped after 3 rounds") and len(double.chats) == 3
    # The last round's call is not run: the model could never read its result.
    assert mini.handler_runs["notes.read"] == 2


async def test_grant_revoked_mid_conversation_refuses_the_next_call_and_shrinks_the_tools(
        double, ollama_server, mini, mini_server):
    double.add(calls(("notes.read", {"path": "reports/q3.md"}), ("notes.read", {"path": "public/readme.md"})),
               say("Partly done."))
    events: list = []

    async def on_event(event) -> None:
        events.append(event)
        if isinstance(event, ToolCallEvent) and event.outcome == Outcome.ALLOWED:
            mini_server.call(mini.revoke("alice", "notes.read"))

    async with Agent(settings(ollama_server, mini_server), StaticToken("tok-alice"), on_event=on_event) as a:
        result = await a.ask("read both")
    assert [c.outcome for c in result.calls] == [Outcome.ALLOWED, Outcome.REFUSED]
    assert mini.handler_runs["notes.read"] == 1
    assert [t["function"]["name"] for t in double.chats[1]["tools"]] == ["notes.list"]
    assert any(isinstance(e, CatalogueEvent) and e.removed == ("notes.read",) for e in events)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_list_changed_between_tasks_shrinks_the_offered_tools(double, ollama_server, mini, mini_server, mode):
    double.add(say("first"), say("second"))
    async with agent(ollama_server, mini_server, "tok-alice", mcp_mode=mode) as a:
        await a.ask("one")
        mini_server.call(mini.revoke("alice", "notes.read"))
        with anyio.fail_after(10):  # a hang guard, not a timing assertion
            await a.session.changed.wait()
        await a.ask("two")
    assert [t["function"]["name"] for t in double.chats[0]["tools"]] == ["notes.list", "notes.read"]
    assert [t["function"]["name"] for t in double.chats[1]["tools"]] == ["notes.list"]
    assert "notes.read" not in double.chats[1]["messages"][0]["content"]


async def test_missing_policy_prompt_falls_back_and_says_so(double, ollama_server, mini, mini_server):
    mini.prompt = False
    double.add(say("hi"))
    events: list = []
    async with agent(ollama_server, mini_server, "tok-alice", events) as a:
        await a.ask("hi")
    assert double.chats[0]["messages"][0]["content"] == FALLBACK_SYSTEM
    assert any(isinstance(e, NoticeEvent) for e in events)


async def test_conversation_carries_on_and_reset_forgets_it(double, ollama_server, mini_server):
    double.add(say("a"), say("b"), say("c"))
    async with agent(ollama_server, mini_server, "tok-alice") as a:
        await a.ask("one")
        await a.ask("two")
        a.reset()
        await a.ask("three")
    assert [m["content"] for m in double.chats[1]["messages"][1:]] == ["one", "a", "two"]
    assert [m["content"] for m in double.chats[2]["messages"][1:]] == ["three"]


async def test_run_task_is_one_task_with_a_fresh_agent(double, ollama_server, mini, mini_server):
    double.add(READ_Q3, say("done"))
    seen: list = []
    result = await run_task("q3?", model="qwen3:4b", token="tok-alice", gateway_url=mini_server.url + "/mcp",
                            ollama_url=ollama_server.url, on_event=seen.append)
    assert result.answer == "done" and any(isinstance(e, ToolCallEvent) for e in seen)
