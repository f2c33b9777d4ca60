"""MCP tools become Ollama tools that still tell the model everything, even through the client."""

from __future__ import annotations

import ollama
from mcp_types import Tool
from ollama._types import Tool as ClientTool

from mcp_acl.agent.tool_format import ollama_tool, ollama_tools
from tests.support.ollama_double import say

ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string", "description": "Street and number"},
        "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
    },
    "required": ["street"],
}
SCHEMA = {
    "type": "object",
    "$defs": {"Address": ADDRESS},
    "properties": {
        "path": {"type": "string", "description": "File path", "minLength": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        "mode": {"enum": ["fast", "slow"], "description": "How hard to try"},
        "since": {"type": "string", "format": "date-time"},
        "ship_to": {"$ref": "#/$defs/Address"},
        "stops": {"type": "array", "items": {"$ref": "#/$defs/Address"}, "maxItems": 3},
        "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    "required": ["path", "ship_to"],
    "additionalProperties": False,
}
TOOL = Tool(name="orders.ship", description="Ship an order.", input_schema=SCHEMA)


def _props(tool: Tool = TOOL) -> dict:
    return ollama_tool(tool)["function"]["parameters"]["properties"]


def test_what_we_build_survives_the_ollama_client_unchanged():
    built = ollama_tool(TOOL)
    assert ClientTool.model_validate(built).model_dump(exclude_none=True) == built


def test_top_level_required_is_kept_as_required():
    assert ollama_tool(TOOL)["function"]["parameters"]["required"] == ["path", "ship_to"]


def test_default_and_bounds_are_written_into_the_description():
    assert "Must be at least 1 and at most 100." in _props()["limit"]["description"]
    assert "Default: 10." in _props()["limit"]["description"]
    assert "At least 1 character." in _props()["path"]["description"]


def test_enum_without_type_gets_its_type_and_keeps_the_values():
    assert _props()["mode"]["type"] == "string" and _props()["mode"]["enum"] == ["fast", "slow"]


def test_format_is_written_into_the_description():
    assert "Format: date-time." in _props()["since"]["description"]


def test_nested_object_shape_and_its_required_fields_are_described():
    text = _props()["ship_to"]["description"]
    assert _props()["ship_to"]["type"] == "object"
    assert '"street": string (required) — Street and number' in text
    assert '"zip": string (optional) — Must match the regular expression ^[0-9]{5}$' in text


def test_refs_in_items_are_inlined_so_the_client_keeps_the_whole_shape():
    items = _props()["stops"]["items"]
    assert items["properties"]["street"] == {"type": "string", "description": "Street and number"}
    assert "$ref" not in str(items) and "At most 3 items." in _props()["stops"]["description"]


def test_any_of_types_become_a_type_list():
    assert _props()["label"]["type"] == ["string", "null"]
    assert "Default: null." in _props()["label"]["description"]


def test_optional_fields_say_so_and_closed_objects_are_noted():
    assert _props()["limit"]["description"].startswith("Optional.")
    assert "Optional." not in _props()["path"]["description"]
    assert "Only the listed arguments are accepted." in ollama_tool(TOOL)["function"]["description"]


def test_keywords_without_words_are_kept_as_json():
    tool = Tool(name="t", input_schema={
        "type": "object", "properties": {"n": {"type": "integer", "not": {"const": 13}}},
        "dependentRequired": {"a": ["b"]},
    })
    assert 'Also: {"not": {"const": 13}}.' in _props(tool)["n"]["description"]
    assert '{"dependentRequired": {"a": ["b"]}}' in ollama_tool(tool)["function"]["description"]


def test_recursive_refs_are_cut_off_instead_of_looping():
    tool = Tool(name="tree", input_schema={
        "type": "object", "$defs": {"Node": {"type": "object", "properties": {
            "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
        "properties": {"root": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
    })
    items = _props(tool)["root"]["items"]
    assert "recursively" in items["properties"]["kids"]["items"]["description"]


def test_tool_without_description_is_described_by_its_name():
    assert ollama_tool(Tool(name="files.list", input_schema={"type": "object"}))["function"]["description"] == "files.list"


async def test_the_wire_request_still_tells_the_model_everything(double, ollama_url):
    double.add(say("ok"))
    async with ollama.AsyncClient(host=ollama_url) as client:
        await client.chat("qwen3:4b", [{"role": "user", "content": "go"}], tools=ollama_tools([TOOL]))
    sent = double.chats[0]["tools"][0]["function"]
    assert sent == ollama_tool(TOOL)["function"]
    assert sent["parameters"]["required"] == ["path", "ship_to"]
    assert "(required)" in sent["parameters"]["properties"]["ship_to"]["description"]
