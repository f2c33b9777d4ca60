"""The governed /ollama/api/chat, end to end: the real `ollama` client as the app, the scripted Ollama upstream."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest
from sqlalchemy import select

from mcp_acl.store import tables as t
from tests.ollama_endpoint.conftest import FRONT_END, USER_HEADER
from tests.support.ollama_double import Turn, call, fail, say

Q3 = "reports/q3-sales.md"
MODEL = "qwen3:4b"


def offered(double, chat: int = 0) -> list[str]:
    return [tool["function"]["name"] for tool in double.chats[chat].get("tools") or []]


def audited(world, subject: str) -> list[tuple[str, str, str | None]]:
    """(target, decision, client) of every decision row for `subject`, oldest first."""
    e = t.audit_events.c
    query = select(e.target, e.decision, e.client_id).where(e.kind == "decision", e.subject == subject).order_by(e.id)
    with world.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


async def chat(app: ollama.AsyncClient, text: str, *, stream: bool) -> tuple[str, list]:
    """The answer's text and every chat object the app received."""
    messages = [{"role": "user", "content": text}]
    async with app:
        if not stream:
            response = await app.chat(MODEL, messages=messages)
            return response.message.content, [response]
        parts = [part async for part in await app.chat(MODEL, messages=messages, stream=True)]
    return "".join(p.message.content or "" for p in parts), parts


async def test_alice_and_bob_are_offered_their_own_tools_under_the_access_policy(endpoint):
    endpoint.double.add(say("hi alice"), say("hi bob"))
    for user in ("alice", "bob"):
        answer, _ = await chat(endpoint.app(endpoint.user_token(user)), "hi", stream=False)
        assert answer == f"hi {user}"
    alice, bob = offered(endpoint.double, 0), offered(endpoint.double, 1)
    assert "sql.tables" in alice and "files.search" in alice
    assert set(bob) < set(alice) and "sql.tables" not in bob
    for index, user in enumerate(("alice", "bob")):
        system, *rest = endpoint.double.chats[index]["messages"]
        assert system["role"] == "system" and f"user {user}" in system["content"]
        assert rest == [{"role": "user", "content": "hi"}]
    # The prompt was fetched through the admission like any prompts/get.
    assert audited(endpoint.world, "alice") == [("prompt:access-policy", "allow", "ollama-agent")]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_allowed_call_runs_and_its_result_reaches_the_answer(endpoint_each_db, stream):
    endpoint = endpoint_each_db
    endpoint.double.add(call("files.read", path=Q3), say("Revenue was 41,200 EUR."))
    answer, parts = await chat(endpoint.app(endpoint.user_token("alice")), "How did Q3 go?", stream=stream)
    assert answer == "Revenue was 41,200 EUR."
    told = endpoint.double.chats[1]["messages"][-1]
    assert told["role"] == "tool" and told["tool_name"] == "files.read" and "Revenue: 41,200 EUR" in told["content"]
    # The loop stays on the server: the app never sees a tool call.
    assert all(not p.message.tool_calls for p in parts) and parts[-1].done
    assert ("tool:files.read", "allow", "ollama-agent") in audited(endpoint.world, "alice")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_refused_call_is_audited_and_the_model_reads_the_refusal(endpoint, stream):
    endpoint.double.add(call("files.read", path=Q3), say("I may not read that."))
    answer, _ = await chat(endpoint.app(endpoint.user_token("bob")), "How did Q3 go?", stream=stream)
    assert answer == "I may not read that."
    told = endpoint.double.chats[1]["messages"][-1]
    assert told["content"].startswith("ERROR: the gateway refused this call. Refused: ")
    assert "41,200" not in told["content"]
    assert ("tool:files.read", "deny", "ollama-agent") in audited(endpoint.world, "bob")


async def test_closing_object_lists_the_calls_and_text_of_every_round_streams(endpoint):
    endpoint.double.add(Turn(content="Let me look.", tool_calls=(("files.read", {"path": Q3}),)), say("Revenue was 41,200 EUR."))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Q3?"}]}
    headers = {"Authorization": f"Bearer {endpoint.user_token('alice')}"}
    async with httpx.AsyncClient() as http:
        response = await http.post(endpoint.url + "/api/chat", json=body, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(x) for x in response.text.splitlines()]
    assert "".join(x["message"]["content"] for x in lines) == "Let me look.\n\nRevenue was 41,200 EUR."
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert lines[-1]["mcp_acl"] == {"tool_calls": [{"name": "files.read", "outcome": "allowed"}]}


async def test_app_tools_are_refused_so_the_model_calls_only_governed_ones(endpoint):
    own = {"type": "function", "function": {"name": "shell", "description": "run", "parameters": {"type": "object"}}}
    with pytest.raises(ollama.ResponseError) as refused:
        async with endpoint.app(endpoint.user_token("alice")) as app:
            await app.chat(MODEL, messages=[{"role": "user", "content": "hi"}], tools=[own])
    assert refused.value.status_code == 400 and "only the tools mcp-acl governs" in refused.value.error
    assert endpoint.double.chats == []


async def test_model_not_pulled_is_a_404_in_ollamas_shape(endpoint):
    with pytest.raises(ollama.ResponseError) as failed:
        async with endpoint.app(endpoint.user_token("alice")) as app:
            await app.chat("nope:1b", messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 404 and "nope:1b" in failed.value.error


async def test_upstream_failure_mid_loop_reaches_the_app_as_an_error(endpoint):
    endpoint.double.add(call("files.list", path="reports"), fail(500, "out of memory"))
    with pytest.raises(ollama.ResponseError) as failed:
        await chat(endpoint.app(endpoint.user_token("alice")), "list", stream=True)
    assert "out of memory" in failed.value.error


@pytest.mark.parametrize("token", [None, "not-a-token", "a.b.c"])
async def test_missing_or_bad_token_is_401_json(endpoint, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        for method, path in (("POST", "/api/chat"), ("GET", "/api/tags"), ("GET", "/api/version")):
            response = await http.request(method, endpoint.url + path, headers=headers,
                                          json={"model": MODEL, "messages": []} if method == "POST" else None)
            assert response.status_code == 401, path
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"] == "invalid_token"
    with pytest.raises(ollama.ResponseError) as refused:
        async with endpoint.app(token) as app:
            await app.list()
    assert refused.value.status_code == 401
    assert endpoint.double.requests == []


async def test_front_end_names_its_user_who_is_decided_under_the_front_end_ceiling(endpoint):
    endpoint.double.add(say("hi"), call("files.read", path="notes/todo.md"), say("Renew the lease."))
    app = endpoint.app(endpoint.front_end_token(), **{USER_HEADER: "alice"})
    await chat(app, "hi", stream=False)
    # alice may use sql.* herself, but the front-end's ceiling allows only files.*.
    assert offered(endpoint.double, 0) == ["files.list", "files.read", "files.search"]
    bob = endpoint.app(endpoint.front_end_token(), **{USER_HEADER: "bob"})
    answer, _ = await chat(bob, "todo?", stream=True)
    assert answer == "Renew the lease."
    assert offered(endpoint.double, 1) == ["files.list", "files.read"]
    assert ("tool:files.read", "allow", FRONT_END) in audited(endpoint.world, "bob")


@pytest.mark.parametrize(("who", "named", "status", "why"), [
    ("alice via the agent client", "bob", 403, "only the trusted front-end's own token"),
    ("alice via the front-end", "bob", 403, "only the trusted front-end's own token"),
    ("the front-end", "mallory", 403, "no user named 'mallory'"),
    ("the front-end", "", 400, "is empty"),
])
async def test_user_header_is_honoured_only_from_the_trusted_front_end_itself(endpoint, who, named, status, why):
    token = {
        "alice via the agent client": endpoint.user_token("alice"),
        "alice via the front-end": endpoint.user_token("alice", FRONT_END),
        "the front-end": endpoint.front_end_token(),
    }[who]
    with pytest.raises(ollama.ResponseError) as refused:
        await chat(endpoint.app(token, **{USER_HEADER: named}), "hi", stream=False)
    assert refused.value.status_code == status and why in refused.value.error
    assert endpoint.double.chats == []


async def test_front_end_may_not_act_for_a_disabled_user_nor_without_a_ceiling(endpoint):
    from mcp_acl.store import PolicyAdmin

    admin = PolicyAdmin(endpoint.world.engine, actor="test")
    admin.set_user_disabled("bob", True)
    app = endpoint.app(endpoint.front_end_token(), **{USER_HEADER: "bob"})
    with pytest.raises(ollama.ResponseError) as refused:
        await chat(app, "hi", stream=False)
    assert refused.value.status_code == 403 and "disabled" in refused.value.error
    admin.remove_client(FRONT_END)
    admin.add_client(FRONT_END, restricted=False)
    alice = endpoint.app(endpoint.front_end_token(), **{USER_HEADER: "alice"})
    with pytest.raises(ollama.ResponseError) as refused:
        await chat(alice, "hi", stream=False)
    assert refused.value.status_code == 403 and "not restricted" in refused.value.error


async def test_model_listing_endpoints_are_forwarded_and_model_management_is_not(endpoint):
    async with endpoint.app(endpoint.user_token("alice")) as app:
        assert [m.model for m in (await app.list()).models] == ["qwen3:4b", "gemma2:2b"]
        assert "tools" in (await app.show(MODEL)).capabilities
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {endpoint.user_token('alice')}"}) as http:
        assert (await http.get(endpoint.url + "/api/version")).json() == {"version": "0.12.6"}
        assert (await http.get(endpoint.url)).text == "Ollama is running"
        pulled = await http.post(endpoint.url + "/api/pull", json={"model": "x"})
    assert pulled.status_code == 404 and "not served" in pulled.json()["error"]
    assert all(r.path != "/api/pull" for r in endpoint.double.requests)


@pytest.mark.parametrize("message", [
    {"role": "robot", "content": "hi"},
    {"role": "user", "content": 42},
    {"role": "user", "content": "hi", "images": [1]},
    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "x", "arguments": "[]"}}]},
])
async def test_malformed_messages_are_a_400_in_ollamas_shape(endpoint, message):
    headers = {"Authorization": f"Bearer {endpoint.user_token('alice')}"}
    async with httpx.AsyncClient() as http:
        response = await http.post(endpoint.url + "/api/chat", headers=headers,
                                   json={"model": MODEL, "messages": [message], "stream": False})
    assert response.status_code == 400 and response.json()["error"].startswith("invalid message")
    assert endpoint.double.chats == []
