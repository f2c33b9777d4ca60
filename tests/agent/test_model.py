"""The model side through the real `ollama` client: streamed replies and Ollama's errors, made clear."""

from __future__ import annotations

import socket

import pytest

from mcp_acl.agent.errors import ModelNotPulled, ModelWithoutTools, OllamaFailed, OllamaUnreachable
from mcp_acl.agent.model import OllamaModel, ollama_url
from tests.support.ollama_double import break_off, call, fail, say

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


def test_url_comes_from_option_then_ollama_host(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.5:11434")
    assert ollama_url() == "http://10.0.0.5:11434"
    assert ollama_url("http://127.0.0.1:1") == "http://127.0.0.1:1"
    monkeypatch.delenv("OLLAMA_HOST")
    assert ollama_url() == "http://127.0.0.1:11434"
