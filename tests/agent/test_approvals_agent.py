"""A small model's call held for approval, with the scripted Ollama and the real gateway over the demo.

alice's select on orders needs an administrator's approval: the agent's call
waits at the gateway (the agent's client shows no URLs, so it waits within
the call), and the model then reads the rows, or a refusal that says who
denied it and why, or who must approve when nobody did in time.
"""

from __future__ import annotations

import anyio
import pytest
import anyio.to_thread

from mcp_acl.agent import Agent, AgentSettings, Outcome, StaticToken
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.approvals import ApprovalStore, answer
from tests.support.ollama_double import call, say

ORDERS = {"table": "orders"}


def needs_approval(demo) -> None:
    admin = PolicyAdmin(demo.engine)
    admin.revoke(demo.grant_id("role:analyst", "tool:sql.select"))
    admin.add_grant("role:analyst", "tool:sql.select", condition='args.table == "orders"', note="orders only", approval_by="admins")


async def pending_request(demo):
    with anyio.fail_after(30):  # a hang guard, not a measure
        while not (found := ApprovalStore(demo.engine).listed()):
            await anyio.sleep(0.02)
    return found[0]


async def ask_while(demo, gateway_url, ollama_url, act):
    settings = AgentSettings("qwen3:4b", gateway_url=gateway_url, ollama_url=ollama_url)
    async with Agent(settings, StaticToken(demo.token("alice"))) as agent:
        async with anyio.create_task_group() as tg:
            results = []

            async def ask() -> None:
                results.append(await agent.ask("What are the orders?"))

            tg.start_soon(ask)
            request = await pending_request(demo)
            await anyio.to_thread.run_sync(lambda: act(request))
    return results[0], request


async def test_the_model_is_held_then_approved_and_reads_the_rows(demo, gateway_url, double, ollama_url):
    needs_approval(demo)
    double.add(call("sql.select", **ORDERS), say("There are orders."))
    result, request = await ask_while(
        demo, gateway_url, ollama_url, lambda r: answer(demo.engine, r.id, approve=True, approver="admin-on-call"),
    )
    # The model was told up front that the tool waits for approval, and by whom.
    offered = {t["function"]["name"]: t["function"]["description"] for t in double.chats[0]["tools"]}
    assert "each call waits for approval by an administrator" in offered["sql.select"]
    system = double.chats[0]["messages"][0]["content"]
    assert "A call that waits for approval is held until the person named approves or denies it." in system
    assert [c.outcome for c in result.calls] == [Outcome.ALLOWED]
    assert request.target == "tool:sql.select" and request.subject == "alice"
    assert "id" in double.chats[1]["messages"][-1]["content"]  # the rows' header reached the model


async def test_the_model_is_held_then_refused_and_reads_who_denied_it_and_why(demo, gateway_url, double, ollama_url):
    needs_approval(demo)
    double.add(call("sql.select", **ORDERS), say("I was not allowed to read the orders."))
    result, request = await ask_while(
        demo, gateway_url, ollama_url,
        lambda r: answer(demo.engine, r.id, approve=False, approver="admin-on-call", reason="orders are closed for audit"),
    )
    assert [c.outcome for c in result.calls] == [Outcome.REFUSED]
    told = double.chats[1]["messages"][-1]["content"]
    assert told.startswith("ERROR: the gateway refused this call. Refused: tool:sql.select was denied by admin-on-call")
    assert told.endswith("orders are closed for audit.")
    assert demo.tool_calls_audited("alice") == [("tool:sql.select", "allow")]  # held, never run


@pytest.fixture
def short_approval_wait(monkeypatch) -> None:
    # Read when the gateway is built: listed before `gateway_url`, so it is set first.
    monkeypatch.setenv("MCP_ACL_APPROVAL_TIMEOUT", "0.5")


async def test_the_model_is_held_and_nobody_answers_it_reads_who_must_approve(short_approval_wait, demo, gateway_url, double, ollama_url):
    needs_approval(demo)
    double.add(call("sql.select", **ORDERS), say("An administrator must approve reading the orders."))
    settings = AgentSettings("qwen3:4b", gateway_url=gateway_url, ollama_url=ollama_url)
    async with Agent(settings, StaticToken(demo.token("alice"))) as agent:
        result = await agent.ask("What are the orders?")
    assert [c.outcome for c in result.calls] == [Outcome.REFUSED]
    told = double.chats[1]["messages"][-1]["content"]
    assert "Refused: tool:sql.select needs approval by an administrator, and it was not approved within 0.5 seconds" in told
    [request] = ApprovalStore(demo.engine).listed(pending_only=False)
    assert request.status == "timed_out"
