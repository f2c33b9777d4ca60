"""The model side through the real `ollama` client: streamed replies and Ollama's errors, made clear."""

from __future__ import annotations

import json
import socket

import pytest

from mcp_acl.agent.errors import ModelNotPulled, ModelWithoutTools, OllamaFailed, OllamaUnreachable
from mcp_acl.agent.model import OllamaModel, ToolCallRequest, ollama_url
from tests.support.ollama_double import RawBody, break_off, call, call_raw, fail, raw, say

ASK = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "notes.list", "description": "List.",
                                            "parameters": {"type": "object", "properties": {}}}}]


def closed_port_url() -> str:
    # A port the kernel just handed out and that nobody listens on any more.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_reply_gathers_streamed_text_and_tool_calls(double, ollama_url):
    double.add(call("notes.list"), say("Two notes."))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        first = await model.reply(ASK, TOOLS)
        second = await model.reply(ASK, TOOLS)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("notes.list", {})]
    assert second.content == "Two notes." and not second.tool_calls


async def test_num_ctx_is_sent_with_every_chat(double, ollama_url):
    double.add(say("ok"))
    async with OllamaModel("qwen3:4b", ollama_url, num_ctx=16384) as model:
        await model.reply(ASK, TOOLS)
    assert double.chats[0]["options"]["num_ctx"] == 16384 and double.chats[0]["stream"] is True


async def test_streamed_text_reaches_the_sink_piece_by_piece(double, ollama_url):
    double.add(say("one two three"))
    pieces: list[str] = []
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        await model.reply(ASK, TOOLS, on_text=pieces.append)
    assert pieces == ["one ", "two ", "three"]


async def test_ollama_down_names_the_url_and_ollama_serve():
    url = closed_port_url()
    async with OllamaModel("qwen3:4b", url) as model:
        with pytest.raises(OllamaUnreachable) as caught:
            await model.check()
        with pytest.raises(OllamaUnreachable):
            await model.reply(ASK, TOOLS)
    assert url in str(caught.value) and "ollama serve" in str(caught.value)


async def test_model_not_pulled_says_ollama_pull(ollama_url):
    async with OllamaModel("llama9:1b", ollama_url) as model:
        with pytest.raises(ModelNotPulled) as caught:
            await model.check()
        with pytest.raises(ModelNotPulled):
            await model.reply(ASK, TOOLS)
    assert "`ollama pull llama9:1b`" in str(caught.value)


async def test_model_without_tools_is_named_with_a_suggestion(ollama_url):
    async with OllamaModel("gemma2:2b", ollama_url) as model:
        with pytest.raises(ModelWithoutTools) as caught:
            await model.check()
    assert "'gemma2:2b' does not support tool calling" in str(caught.value) and "qwen3:4b" in str(caught.value)


async def test_chat_refusing_tools_is_the_same_error(ollama_url):
    # Ollama versions without `capabilities` in /api/show only say so when the chat is sent.
    async with OllamaModel("gemma2:2b", ollama_url) as model:
        with pytest.raises(ModelWithoutTools):
            await model.reply(ASK, TOOLS)


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_keep_status_and_ollama_message(double, ollama_url, status):
    double.add(fail(status, "server busy, please try again"))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        with pytest.raises(OllamaFailed) as caught:
            await model.reply(ASK, TOOLS)
    assert str(caught.value) == f"Ollama answered {status} for 'qwen3:4b': server busy, please try again"


async def test_error_line_mid_stream_is_reported(double, ollama_url):
    double.add(break_off("llama runner process has terminated", after="Let me"))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        with pytest.raises(OllamaFailed) as caught:
            await model.reply(ASK, TOOLS)
    assert "failed while answering" in str(caught.value) and "runner process" in str(caught.value)


async def test_arguments_sent_as_a_json_string_are_parsed(double, ollama_url):
    double.add(call("notes.read", '{"path": "a.md"}'))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        reply = await model.reply(ASK, TOOLS)
    assert reply.tool_calls[0] == ToolCallRequest("notes.read", {"path": "a.md"})


@pytest.mark.parametrize(("wire", "problem"), [
    ("null", "null"),
    ('"not json"', "a string that is not JSON"),
    ('"[1, 2]"', "a string holding a list"),
    ("[1, 2]", "a list"),
    ("7", "a number"),
])
async def test_arguments_that_are_no_object_arrive_as_a_problem_not_a_crash(double, ollama_url, wire, problem):
    double.add(call_raw("notes.read", wire))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        reply = await model.reply(ASK, TOOLS)
    assert reply.tool_calls[0].name == "notes.read" and reply.tool_calls[0].problem == problem
    # The history keeps an object, which Ollama accepts when the conversation goes on.
    assert reply.as_message()["tool_calls"] == [{"function": {"name": "notes.read", "arguments": {}}}]


async def test_a_tool_call_without_a_name_arrives_as_a_problem(double, ollama_url):
    nameless = {"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]}
    line = json.dumps({"message": nameless, "done": True})
    double.add(raw(line, media_type="application/x-ndjson"))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        reply = await model.reply(ASK, TOOLS)
    assert reply.tool_calls == (ToolCallRequest("", {}, "it named no tool"),)


@pytest.mark.parametrize("turn", [
    raw("<html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>", status=502),
    raw("<!DOCTYPE html>\n<html><body>Welcome</body></html>"),
    raw("upstream connect error", media_type="text/plain"),
    raw('["not", "an", "object"]', media_type="application/x-ndjson"),
    raw('{"message": "hello"}', media_type="application/x-ndjson"),
])
async def test_a_chat_answer_that_is_not_ollamas_api_is_one_line_naming_the_url(double, ollama_url, turn):
    double.add(turn)
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        with pytest.raises(OllamaFailed) as caught:
            await model.reply(ASK, TOOLS)
    message = str(caught.value)
    assert "\n" not in message and f"the server at {ollama_url} answered /api/chat with " in message
    assert message.endswith("not Ollama's API: is --ollama-url (or OLLAMA_HOST) pointing at Ollama?")


@pytest.mark.parametrize("body", [RawBody("<html>It works!</html>"), RawBody("ok", media_type="text/plain"),
                                  RawBody("[]", media_type="application/json"),
                                  RawBody('{"capabilities": 5}', media_type="application/json")])
async def test_a_show_answer_that_is_not_ollamas_api_is_one_line(double, ollama_url, body):
    double.show_raw = body
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        with pytest.raises(OllamaFailed) as caught:
            await model.check()
    assert "\n" not in str(caught.value) and "answered /api/show with" in str(caught.value)


async def test_a_long_error_body_is_cut_to_one_line(double, ollama_url):
    double.add(fail(500, "first line\n" + "x" * 1000))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        with pytest.raises(OllamaFailed) as caught:
            await model.reply(ASK, TOOLS)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_url_comes_from_option_then_ollama_host(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.5:11434")
    assert ollama_url() == "http://10.0.0.5:11434"
    assert ollama_url("http://127.0.0.1:1") == "http://127.0.0.1:1"
    monkeypatch.delenv("OLLAMA_HOST")
    assert ollama_url() == "http://127.0.0.1:11434"


async def test_arguments_nested_too_deeply_arrive_as_a_problem(double, ollama_url):
    # The decoder recurses: past its depth it raises RecursionError, which is no ValueError.
    double.add(call_raw("notes.read", json.dumps("[" * 5000 + "]" * 5000)))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        reply = await model.reply(ASK, TOOLS)
    assert reply.tool_calls[0].problem == "a string holding JSON nested too deeply"


async def test_a_chat_body_nested_too_deeply_is_not_ollamas_api(double, ollama_url):
    double.add(raw("[" * 100_000 + "]" * 100_000, media_type="application/x-ndjson"))
    async with OllamaModel("qwen3:4b", ollama_url) as model:
        with pytest.raises(OllamaFailed) as caught:
            await model.reply(ASK, TOOLS)
    assert "answered /api/chat with a body that is not Ollama's JSON" in str(caught.value)
