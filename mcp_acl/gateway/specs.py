"""What a tool module in tools/ hands the catalogue: tools, resources, templates.

A tool module is a Python file loaded by path (never imported as a package
named `tools`) that defines `load(config: ToolConfig) -> Iterable[Spec]`,
where a Spec is a ToolSpec, ResourceSpec, ResourceTemplateSpec or
ResourceListing. Upstream MCP servers add the same specs, plus PromptSpecs.
Handlers receive validated arguments and return text (or raise ToolError
with a message the model can read); they never see tokens. A handler that
forwards to an upstream MCP server may return the upstream's
CallToolResult (a reader its ReadResourceResult), which reaches the caller
unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_acl.policy import Identity

if TYPE_CHECKING:
    # Only for annotations: tool modules load without the MCP SDK.
    import mcp_types as types


class ToolError(Exception):
    """A tool failed in a way the caller should be told about (its message is shown)."""


DEFAULT_SQL_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ToolConfig:
    """Where the built-in tools work: the files root and the SQL database (and how long a statement may run)."""

    files_root: Path
    sql_url: str
    extra: dict[str, str] = field(default_factory=dict)
    # Every statement the SQL tools run is stopped after this long.
    sql_timeout_seconds: float = DEFAULT_SQL_TIMEOUT_SECONDS


Progress = Callable[[float, float | None, str | None], Awaitable[None]]
"""Reports progress of the call being handled: (progress so far, total if known, a message)."""


@dataclass(frozen=True)
class CallContext:
    """What a handler may know about the call: who (never the token) and which session."""

    identity: Identity
    session_id: str | None = None
    # Set when the caller asked for progress (a progressToken): `await progress(done, total, message)`
    # sends it notifications/progress; a forwarded upstream call hands its progress on through it.
    progress: Progress | None = None


ToolHandler = Callable[[dict[str, Any], CallContext], Awaitable[str] | str]
ResourceReader = Callable[[str, CallContext], "Awaitable[str | types.ReadResourceResult] | str"]
PromptGetter = Callable[[dict[str, str], CallContext], "Awaitable[types.GetPromptResult]"]

# Upstream resources are offered under URIs of this scheme that embed the
# upstream's name (see upstream_uri), so two upstreams never collide.
UPSTREAM_SCHEME = "upstream"


def upstream_uri(namespace: str, uri: str = "") -> str:
    """The gateway's URI (or template) for an upstream's own `uri`: `upstream://NAME/` + `uri`, unchanged.

    >>> upstream_uri("notes", "note://alpha")
    'upstream://notes/note://alpha'
    """
    return f"{UPSTREAM_SCHEME}://{namespace}/{uri}"


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its MCP name (e.g. `files.read`), description, JSON schema and handler."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: ToolHandler
    title: str | None = None

    @property
    def target(self) -> str:
        return f"tool:{self.name}"


@dataclass(frozen=True)
class ResourceSpec:
    """One concrete resource, e.g. `file:///reports/q3.md`."""

    uri: str
    name: str
    reader: ResourceReader
    description: str | None = None
    mime_type: str | None = "text/plain"

    @property
    def target(self) -> str:
        return f"resource:{self.uri}"


@dataclass(frozen=True)
class ResourceTemplateSpec:
    """A family of resources, e.g. `file:///{path}`; `reader` gets the concrete URI."""

    uri_template: str
    name: str
    reader: ResourceReader
    # Answers whether a concrete URI belongs to this template.
    matches: Callable[[str], bool]
    description: str | None = None
    mime_type: str | None = "text/plain"


@dataclass(frozen=True)
class ResourceListing:
    """Resources that come and go (e.g. files): `list_resources()` is called at each listing."""

    name: str
    list_resources: Callable[[], Iterable[ResourceSpec]]


@dataclass(frozen=True)
class PromptSpec:
    """A prompt from a source other than the gateway itself (an upstream's, named NAME.prompt); `getter` renders it."""

    name: str
    description: str | None
    arguments: tuple[types.PromptArgument, ...]
    getter: PromptGetter
    title: str | None = None

    @property
    def target(self) -> str:
        return f"prompt:{self.name}"
