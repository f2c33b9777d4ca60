"""An upstream's prompts as catalogue entries named NAME.prompt, whose getters forward prompts/get with the arguments."""

from __future__ import annotations

import logging

import anyio
import mcp_types as types

from mcp_acl.gateway.specs import CallContext, PromptSpec
from mcp_acl.policy import PolicyError, parse_target
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.forwarding import forward

log = logging.getLogger(__name__)


def getter(conn: UpstreamConnection, remote: str):
    """A getter that asks the upstream for prompt `remote` and hands its result back unchanged."""

    async def get(arguments: dict[str, str], ctx: CallContext) -> types.GetPromptResult:
        return await forward(conn, ctx, f"get prompt {remote}", lambda client: client.get_prompt(remote, arguments or None))

    return get


def definition(prompt: types.Prompt) -> dict:
    """What is pinned of a prompt: everything a model or a person reads before getting it (JSON-ready)."""
    return {
        "name": prompt.name,
        "title": prompt.title,
        "description": prompt.description,
        "arguments": [a.model_dump(mode="json", exclude_none=True) for a in prompt.arguments or ()],
    }


def to_spec(conn: UpstreamConnection, prompt: types.Prompt) -> PromptSpec | None:
    """`prompt` as a catalogue entry NAME.prompt; None (with a warning) when its name cannot be granted."""
    name = f"{conn.upstream.name}.{prompt.name}"
    try:
        parse_target(f"prompt:{name}")
    except PolicyError:
        log.warning("upstream %s: prompt %r left out: its name cannot be named in a grant", conn.upstream.name, prompt.name)
        return None
    return PromptSpec(
        name=name, description=prompt.description, arguments=tuple(prompt.arguments or ()),
        getter=getter(conn, prompt.name), title=prompt.title,
    )


async def read_prompts(conn: UpstreamConnection) -> list[types.Prompt]:
    """The upstream's prompts as it lists them now (every page); none when it offers no prompts."""
    client, up = conn.client, conn.upstream
    if client is None or client.server_capabilities.prompts is None:
        return []
    found: list[types.Prompt] = []
    cursor = None
    with anyio.fail_after(up.timeout_seconds):
        while True:
            page = await client.list_prompts(cursor=cursor)
            found.extend(page.prompts)
            if not (cursor := page.next_cursor):
                return found
