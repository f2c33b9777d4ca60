"""Tool results and prompts become the text the model reads."""

from __future__ import annotations

from mcp_types import (
    CallToolResult,
    EmbeddedResource,
    GetPromptResult,
    ImageContent,
    PromptMessage,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from mcp_acl.agent.messages import is_refusal, prompt_text, result_text, tool_message


def test_all_text_parts_are_joined():
    result = CallToolResult(content=[TextContent(text="line one"), TextContent(text="line two")])
    assert result_text(result) == "line one\nline two"


def test_refusals_are_said_plainly():
    result = CallToolResult(content=[TextContent(text="Refused: no grant allows alice to use tool:x.")],
                            is_error=True)
    assert is_refusal(result)
    assert result_text(result) == "ERROR: the gateway refused this call. Refused: no grant allows alice to use tool:x."


def test_unknown_tool_at_the_gateway_counts_as_a_refusal():
    assert is_refusal(CallToolResult(content=[TextContent(text="Unknown tool: x")], is_error=True))


def test_tool_failures_are_said_plainly_and_are_not_refusals():
    result = CallToolResult(content=[TextContent(text="reports/q9.md does not exist")], is_error=True)
    assert not is_refusal(result)
    assert result_text(result) == "ERROR: the tool failed: reports/q9.md does not exist"


def test_embedded_text_is_kept_and_binary_parts_are_named():
    result = CallToolResult(content=[
        EmbeddedResource(type="resource", resource=TextResourceContents(uri="file:///a.md", text="# A")),
        ImageContent(type="image", data="AAAA", mime_type="image/png"),
        ResourceLink(type="resource_link", uri="file:///b.md", name="b"),
    ])
    assert result_text(result) == "# A\n[image (image/png) omitted]\n[resource link: file:///b.md]"


def test_structured_content_is_used_when_there_is_no_text():
    assert result_text(CallToolResult(content=[], structured_content={"rows": 2})) == '{"rows": 2}'


def test_empty_result_says_so():
    assert result_text(CallToolResult(content=[])) == "(no output)"


def test_prompt_messages_become_one_system_text():
    prompt = GetPromptResult(messages=[PromptMessage(role="user", content=TextContent(text="You act for alice.")),
                                       PromptMessage(role="user", content=TextContent(text="Be brief."))])
    assert prompt_text(prompt) == "You act for alice.\n\nBe brief."


def test_tool_message_has_ollama_shape():
    assert tool_message("notes.read", "x") == {"role": "tool", "content": "x", "tool_name": "notes.read"}
