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

from mcp_acl.agent.messages import (
    invalid_arguments_text,
    is_invalid_arguments,
    is_refusal,
    over_cap_text,
    prompt_text,
    result_text,
    tool_message,
    unsendable_text,
)


def test_all_text_parts_are_joined():
    result = CallToolResult(content=[TextContent(text="line one"), TextContent(text="line two")])
    assert result_text(result) == "line one\nline two"


def test_refusals_are_said_plainly():
    result = CallToolResult(content=[TextContent(text="Refused: no grant allows alice to use tool:x.")],
                            is_error=True)
    assert is_refusal(result)
    assert result_text(result) == "ERROR: the gateway refused this call. Refused: no grant allows alice to use tool:x."


def test_unknown_tool_at_the_gateway_counts_as_a_refusal():
    text = "No tool named x is available to you. Your tools: files.list."
    assert is_refusal(CallToolResult(content=[TextContent(text=text)], is_error=True))


def test_invalid_arguments_tell_the_model_to_correct_them_not_that_the_tool_failed():
    result = CallToolResult(content=[TextContent(
        text="Invalid arguments for files.read: at path: 42 is not of type 'string'")], is_error=True)
    assert is_invalid_arguments(result) and not is_refusal(result)
    assert invalid_arguments_text(result) == (
        "ERROR: the gateway did not run this call. Invalid arguments for files.read: at path: 42 is not of type "
        "'string'. Call it again with corrected arguments.")


def test_answers_for_calls_not_run_are_one_sentence():
    for text in (over_cap_text(8), unsendable_text("files.read", "null"), unsendable_text("", "it named no tool")):
        assert text.startswith("ERROR: not run: ") and text.count(". ") == 0 and text.endswith(".")


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
