"""/ollama/v1/chat/completions: the same governed loop in OpenAI's Chat Completions shape (over raw HTTP)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.ollama_endpoint.test_chat import MODEL, Q3, audited
from tests.support.ollama_double import call, say


async def complete(endpoint, user: str, body: dict) -> httpx.Response:
    headers = {"Authorization": f"Bearer {endpoint.user_token(user)}"}
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(endpoint.url + "/v1/chat/completions", json=body, headers=headers)


def events(response: httpx.Response) -> list:
    """The `data:` payloads of a server-sent event stream, `[DONE]` kept as text."""
    found = []
    for block in response.text.split("\n\n"):
        if block.startswith("data: "):
            payload = block[len("data: "):]
            found.append(payload if payload == "[DONE]" else json.loads(payload))
    return found


async def test_allowed_call_runs_and_the_completion_carries_the_answer(endpoint):
    endpoint.double.add(call("files.read", path=Q3), say("Revenue was 41,200 EUR."))
    response = await complete(endpoint, "alice", {"model": MODEL, "messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "How did Q3 go?"}]}]})
    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion" and completion["model"] == MODEL
    assert completion["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Revenue was 41,200 EUR."},
                                      "finish_reason": "stop"}]
    assert completion["mcp_acl"] == {"tool_calls": [{"name": "files.read", "outcome": "allowed"}]}
    sent = endpoint.double.chats[0]["messages"]
    assert sent[1:] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How did Q3 go?"}]
    assert "Revenue: 41,200 EUR" in endpoint.double.chats[1]["messages"][-1]["content"]
    assert ("tool:files.read", "allow", "ollama-agent") in audited(endpoint.world, "alice")


async def test_streamed_refusal_reaches_the_model_and_the_app_reads_chunks_then_done(endpoint):
    endpoint.double.add(call("files.read", path=Q3), say("I may not read that."))
    response = await complete(endpoint, "bob", {"model": MODEL, "stream": True,
                                                "messages": [{"role": "user", "content": "Q3?"}]})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    *chunks, done = events(response)
    assert done == "[DONE]" and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "I may not read that."
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert endpoint.double.chats[1]["messages"][-1]["content"].startswith("ERROR: the gateway refused this call.")
    assert ("tool:files.read", "deny", "ollama-agent") in audited(endpoint.world, "bob")


@pytest.mark.parametrize(("body", "said"), [
    ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "function", "function": {"name": "shell"}}]}, "only the tools mcp-acl governs"),
    ({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}, "nothing is fetched"),
    ({"model": MODEL, "messages": []}, "non-empty"),
])
async def test_requests_it_cannot_take_are_a_400_in_openais_shape(endpoint, body, said):
    response = await complete(endpoint, "alice", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert said in error["message"] and error["type"] == "invalid_request_error"
    assert endpoint.double.chats == []
