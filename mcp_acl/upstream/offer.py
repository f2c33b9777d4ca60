"""Everything one upstream offers (tools, resources, templates, prompts), read in one go and turned into catalogue entries."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_acl.gateway.catalogue import NamespaceEntries
from mcp_acl.store.pins import Pins, trusted
from mcp_acl.upstream import prompts as prompt_entries
from mcp_acl.upstream import tools as tool_entries
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.resources import read_resources, resource_specs, template_specs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """What an upstream lists now, as the upstream names it."""

    tools: list[types.Tool] = field(default_factory=list)
    resources: list[types.Resource] = field(default_factory=list)
    templates: list[types.ResourceTemplate] = field(default_factory=list)
    prompts: list[types.Prompt] = field(default_factory=list)

    def definitions(self) -> Pins:
        """The tools' and prompts' definitions by the upstream's own names (what is pinned)."""
        return Pins(
            tools={tool.name: tool_entries.definition(tool) for tool in self.tools},
            prompts={prompt.name: prompt_entries.definition(prompt) for prompt in self.prompts},
        )


def pinned_offer(pinned: Pins) -> Offer:
    """The offer an upstream made when it was pinned, rebuilt from the pins (its tools and prompts; resources are not pinned).

    Listed while the upstream is down, so its callers still see what they may
    use and get a clear "cannot be reached" instead of an unknown tool.
    """
    return Offer(
        tools=[types.Tool.model_validate(d) for d in pinned.tools.values()],
        prompts=[types.Prompt.model_validate(d) for d in pinned.prompts.values()],
    )


async def read_offer(conn: UpstreamConnection) -> Offer:
    """List the upstream's tools, then its resources, templates and prompts when it offers them.

    Raises when the tools cannot be listed or the connection fails. An
    upstream that answers resources/list or prompts/list with an error (it
    announced them but will not list them) offers none of that kind, with a
    warning, and keeps its tools.
    """
    tools = await tool_entries.read_tools(conn)
    name = conn.upstream.name
    try:
        resources, templates = await read_resources(conn)
    except MCPError as exc:
        log.warning("upstream %s: its resources could not be listed: %s", name, exc.error.message)
        resources, templates = [], []
    try:
        prompts = await prompt_entries.read_prompts(conn)
    except MCPError as exc:
        log.warning("upstream %s: its prompts could not be listed: %s", name, exc.error.message)
        prompts = []
    return Offer(tools, resources, templates, prompts)


def _withheld(name: str, kind: str, item: str, pinned: Mapping[str, dict]) -> None:
    why = "changed since it was pinned" if item in pinned else "is new"
    log.warning("upstream %s: %s %r %s; withheld until `mcp-acl upstream approve %s`", name, kind, item, why, name)


def withheld_tools(offer: Offer, pinned: Pins) -> int:
    """How many of `offer`'s tools are withheld (not as pinned), for the upstream's health report."""
    return sum(not trusted(pinned.tools, name, d) for name, d in offer.definitions().tools.items())


def _as_pinned(conn: UpstreamConnection, kind: str, items: list, current: Mapping[str, dict], pinned: Mapping[str, dict], to_spec) -> dict:
    """Catalogue entries of the `items` (tools or prompts) whose current definitions match their pins; the rest withheld and logged."""
    found = {}
    for item in items:
        if not trusted(pinned, item.name, current[item.name]):
            _withheld(conn.upstream.name, kind, item.name, pinned)
            continue
        spec = to_spec(conn, item)
        if spec is not None:
            found[spec.name] = spec
    return found


def entries(conn: UpstreamConnection, offer: Offer, pinned: Pins) -> NamespaceEntries:
    """The catalogue entries of `offer`: tools and prompts only as `pinned`, resources and templates as listed.

    Resources and templates are not pinned: what a resource holds is data
    that comes and goes, read only by a decided resources/read, like a tool's
    result (see docs/upstreams.md).
    """
    current = offer.definitions()
    tools = _as_pinned(conn, "tool", offer.tools, current.tools, pinned.tools, tool_entries.to_spec)
    prompts = _as_pinned(conn, "prompt", offer.prompts, current.prompts, pinned.prompts, prompt_entries.to_spec)
    return NamespaceEntries(
        tools=tools, resources=resource_specs(conn, offer.resources),
        templates=template_specs(conn, offer.templates), prompts=prompts,
    )
