"""The Ollama double answers the real `ollama` client the way Ollama does."""

from __future__ import annotations

import json

import httpx
import ollama
import pytest

from tests.support.ollama_double import OllamaDouble, RawBody, break_off, call, call_raw, calls, fail, raw, say
from tests.auth.support import LoopbackServer

TOOLS = [{"type": "function", "function": {"name": "notes.read", "description": "Read a note.",
                                            "parameters": {"type": "object", "properties": {}}}}]
ASK = [{"role": "user", "content": "hi"}]


@pytest.fixture
def double():
    return OllamaDouble()


@pytest.fixture
def host(double):
    with LoopbackServer(double.app) as url:
        yield url


@pytest.fixture
async def client(host):
    async with ollama.AsyncClient(host=host) as client:
        yield client


async def test_streamed_chat_ends_with_a_done_chunk_carrying_counts(client, double):
    double.add(say("Hello there, alice."))
    parts = [part async for part in await client.chat("qwen3:4b", ASK, stream=True)]
    assert "".join(p.message.content or "" for p in parts) == "Hello there, alice."
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert parts[-1].done_reason == "stop" and parts[-1].eval_count and parts[-1].prompt_eval_count


async def test_chat_without_stream_field_streams_ndjson(double, host):
    double.add(say("one two"))
    response = httpx.post(f"{host}/api/chat", json={"model": "qwen3:4b", "messages": ASK})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert len(response.text.strip().splitlines()) == 3


async def test_unstreamed_chat_is_one_object_with_tool_calls(client, double):
    double.add(call("notes.read", path="a.md"))
    reply = await client.chat("qwen3:4b", ASK, tools=TOOLS)
    assert reply.done and reply.message.tool_calls[0].function.name == "notes.read"
    assert reply.message.tool_calls[0].function.arguments == {"path": "a.md"}


async def test_streamed_tool_calls_arrive_before_the_done_chunk(client, double):
    double.add(calls(("notes.read", {"path": "a"}), ("notes.read", {"path": "b"})))
    parts = [p async for p in await client.chat("qwen3:4b", ASK, tools=TOOLS, stream=True)]
    found = [tc.function.arguments["path"] for p in parts for tc in (p.message.tool_calls or [])]
    assert found == ["a", "b"] and parts[-1].done


async def test_script_may_call_a_tool_the_request_did_not_offer(client, double):
    double.add(call("shell.exec", cmd="ls"))
    reply = await client.chat("qwen3:4b", ASK, tools=TOOLS)
    assert reply.message.tool_calls[0].function.name == "shell.exec"


async def test_every_request_body_is_recorded(client, double):
    double.add(say("ok"))
    await client.chat("qwen3:4b", ASK, tools=TOOLS, options={"num_ctx": 8192})
    assert double.chats[0]["tools"][0]["function"]["name"] == "notes.read"
    assert double.chats[0]["options"] == {"num_ctx": 8192}


async def test_model_that_is_not_pulled_gets_404(client):
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat("llama9:1b", ASK)
    assert caught.value.status_code == 404 and caught.value.error == "model 'llama9:1b' not found"


async def test_tools_for_a_model_without_tools_get_400(client):
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat("gemma2:2b", ASK, tools=TOOLS)
    assert caught.value.status_code == 400
    assert caught.value.error == "registry.ollama.ai/library/gemma2:2b does not support tools"


@pytest.mark.parametrize("status", [500, 503])
async def test_scripted_server_errors_keep_ollama_error_body(client, double, status):
    double.add(fail(status, "server busy, please try again.  maximum pending requests exceeded"))
    with pytest.raises(ollama.ResponseError) as caught:
        [p async for p in await client.chat("qwen3:4b", ASK, stream=True)]
    assert caught.value.status_code == status and caught.value.error.startswith("server busy")


async def test_mid_stream_error_line_under_200_raises_in_the_client(client, double):
    double.add(break_off("llama runner process has terminated: exit status 2", after="Let me"))
    with pytest.raises(ollama.ResponseError) as caught:
        [p async for p in await client.chat("qwen3:4b", ASK, stream=True)]
    assert caught.value.error == "llama runner process has terminated: exit status 2"


async def test_show_reports_capabilities(client):
    shown = await client.show("qwen3:4b")
    assert shown.capabilities == ["completion", "tools", "thinking"]
    with pytest.raises(ollama.ResponseError) as caught:
        await client.show("nope")
    assert caught.value.status_code == 404


async def test_tags_and_version(client, host):
    listed = await client.list()
    assert [m.model for m in listed.models] == ["qwen3:4b", "gemma2:2b"]
    assert httpx.get(f"{host}/api/version").json() == {"version": "0.12.6"}


async def test_exhausted_script_fails_loudly(client):
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat("qwen3:4b", ASK)
    assert caught.value.status_code == 500 and "no turn left" in caught.value.error


@pytest.mark.parametrize("arguments", ["null", '"{\\"path\\": \\"a.md\\"}"', "[1, 2]"])
async def test_raw_tool_call_arguments_go_on_the_wire_verbatim(double, host, arguments):
    double.add(call_raw("notes.read", arguments))
    response = httpx.post(f"{host}/api/chat", json={"model": "qwen3:4b", "messages": ASK, "stream": False})
    assert f'"arguments": {arguments}' in response.text
    assert response.json()["message"]["tool_calls"][0]["function"]["arguments"] == json.loads(arguments)


async def test_raw_turn_answers_the_chat_with_that_body(double, host):
    double.add(raw("<html><body>Bad Gateway</body></html>", status=502))
    response = httpx.post(f"{host}/api/chat", json={"model": "qwen3:4b", "messages": ASK})
    assert response.status_code == 502 and response.text == "<html><body>Bad Gateway</body></html>"


async def test_show_can_answer_with_a_raw_body(host, double):
    double.show_raw = RawBody("not json", media_type="text/plain")
    response = httpx.post(f"{host}/api/show", json={"model": "qwen3:4b"})
    assert response.status_code == 200 and response.text == "not json"
