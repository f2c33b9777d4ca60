"""Arguments checked against a tool's input schema, with a sentence saying what is wrong."""

from __future__ import annotations

from dataclasses import replace

from mcp_acl.gateway.arguments import ArgumentCheck
from mcp_acl.gateway.specs import ToolSpec

READ = ToolSpec(
    name="files.read", description="Read a file.",
    input_schema={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"], "additionalProperties": False},
    handler=lambda args, ctx: "",
)


def test_fitting_arguments_pass():
    assert ArgumentCheck().problem(READ, {"path": "reports/q3.md"}) is None


def test_a_wrong_type_names_the_field():
    assert ArgumentCheck().problem(READ, {"path": 3}) == "at path: 3 is not of type 'string'"


def test_a_missing_or_extra_field_is_named():
    check = ArgumentCheck()
    assert check.problem(READ, {}) == "'path' is a required property"
    assert check.problem(READ, {"path": "a", "mode": "w"}) == "Additional properties are not allowed ('mode' was unexpected)"


def test_a_broken_schema_refuses_every_call():
    broken = ToolSpec(name="x.y", description="", input_schema={"type": "object", "properties": {"a": {"type": 5}}}, handler=lambda a, c: "")
    assert ArgumentCheck().problem(broken, {"a": 1}) == "the tool's input schema is broken, so no call to it can be checked"


class _Wording:
    """Stands in for the jsonschema validator that words refusals."""

    def __init__(self, iter_errors):
        self.iter_errors = iter_errors


def test_the_fast_verdict_refuses_even_where_the_wording_validator_would_pass():
    # If the two validators ever disagree, a refusal from either one stands.
    check = ArgumentCheck()
    assert check.problem(READ, {"path": "a"}) is None
    check._validators["files.read"] = replace(check._validators["files.read"], wording=_Wording(lambda args: iter(())))
    assert check.problem(READ, {"path": 3}) == 'at path: 3 is not of type "string"'


def test_fitting_arguments_never_reach_the_wording_validator():
    check = ArgumentCheck()
    check.problem(READ, {"path": "a"})

    def unexpected(args):
        raise AssertionError("the slow validator ran for fitting arguments")

    check._validators["files.read"] = replace(check._validators["files.read"], wording=_Wording(unexpected))
    assert check.problem(READ, {"path": "reports/q3.md"}) is None
