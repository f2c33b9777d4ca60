"""The guards answer the model, without the gateway, when a call cannot be right."""

from __future__ import annotations

from mcp_types import Tool

from mcp_acl.agent.guards import Catalogue, RepeatCounter, call_key

READ = Tool(name="notes.read", input_schema={
    "type": "object",
    "properties": {"path": {"type": "string"}, "lines": {"type": "integer", "minimum": 1}},
    "required": ["path"],
    "additionalProperties": False,
})
LIST = Tool(name="notes.list", input_schema={"type": "object", "properties": {}})


def test_unknown_tool_is_answered_with_the_tools_there_are():
    message = Catalogue([LIST, READ]).unknown_tool_message("shell.exec")
    assert message == ('ERROR: there is no tool named "shell.exec". The tools you have are: notes.list, notes.read. '
                       "Call one of these, or answer without a tool.")


def test_known_tool_passes_the_name_check():
    assert Catalogue([READ]).unknown_tool_message("notes.read") is None


def test_empty_catalogue_says_there_are_no_tools():
    assert "you have no tools" in Catalogue([]).unknown_tool_message("notes.read")


def test_valid_arguments_pass():
    assert Catalogue([READ]).argument_message("notes.read", {"path": "a.md", "lines": 3}) is None


def test_missing_required_argument_is_named():
    assert Catalogue([READ]).argument_problems("notes.read", {}) == ["arguments: 'path' is a required property"]


def test_wrong_type_bound_and_extra_argument_are_each_named():
    problems = Catalogue([READ]).argument_problems("notes.read", {"path": 7, "lines": 0, "x": 1})
    assert "path: 7 is not of type 'string'" in problems
    assert "lines: 0 is less than the minimum of 1" in problems
    assert any("'x' was unexpected" in p for p in problems)


def test_argument_message_tells_the_model_to_correct_the_call():
    message = Catalogue([READ]).argument_message("notes.read", {"path": 7})
    assert message.startswith('ERROR: the arguments for "notes.read" do not match its schema: path: 7 is not')
    assert message.endswith("Call it again with corrected arguments.")


def test_invalid_schema_fails_closed():
    broken = Tool(name="bad", input_schema={"type": "object", "properties": {"n": {"type": "integr"}}})
    assert "schema is invalid" in Catalogue([broken]).argument_problems("bad", {"n": 1})[0]


def test_unresolvable_ref_fails_closed():
    remote = Tool(name="r", input_schema={"type": "object", "properties": {"n": {"$ref": "#/$defs/missing"}}})
    assert Catalogue([remote]).argument_problems("r", {"n": 1})


def test_same_call_is_admitted_max_repeats_times():
    counter = RepeatCounter(3)
    assert [counter.admit("notes.read", {"path": "a"}) for _ in range(4)] == [True, True, True, False]


def test_repeat_identity_ignores_argument_order():
    assert call_key("t", {"a": 1, "b": 2}) == call_key("t", {"b": 2, "a": 1})
    assert call_key("t", {"a": 1}) != call_key("t", {"a": 2})
