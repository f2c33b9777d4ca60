"""Calling a built-in tool the way the gateway does, for the tests beside this file."""

from __future__ import annotations

import pytest

from mcp_acl.gateway.specs import CallContext, ToolError
from mcp_acl.policy import Identity


class ToolCalls:
    """Calls tools of one catalogue as alice; `refused` expects a ToolError and returns its text."""

    def __init__(self, catalogue) -> None:
        self.catalogue = catalogue
        self.ctx = CallContext(identity=Identity("alice"))

    def __call__(self, tool: str, **args) -> str:
        return self.catalogue.tool(tool).handler(args, self.ctx)

    def refused(self, tool: str, **args) -> str:
        with pytest.raises(ToolError) as caught:
            self(tool, **args)
        return str(caught.value)


@pytest.fixture
def tools(catalogue) -> ToolCalls:
    """The tools of the test module's `catalogue` fixture."""
    return ToolCalls(catalogue)


@pytest.fixture
def tool_calls() -> type[ToolCalls]:
    """ToolCalls itself, for tests that build a catalogue of their own."""
    return ToolCalls
