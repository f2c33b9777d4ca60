"""A small upstream MCP server made with the SDK's MCPServer: served over HTTP by the tests, or run as a stdio script.

    python upstream_server.py        serves it on stdin/stdout
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts import Prompt
from mcp_types.version import MODERN_PROTOCOL_VERSIONS


@dataclass
class Seen:
    """What the upstream saw, for a test in another thread: a hang call began, and ended (cancelled)."""

    hang_started: threading.Event = field(default_factory=threading.Event)
    hang_ended: threading.Event = field(default_factory=threading.Event)


def tracker(seen: Seen | None = None) -> MCPServer:
    """Tools: echo, delete_repo (limited by a condition in the tests), fail (an error result), hang (never answers),
    greeting (from the env), picture (an image), crash (the process dies), count (reports progress), retire and
    offer, which change the upstream's own tools and announce it (list_changed), and end_streams (closes listen streams);
    and resources, a template and prompts (see add_documents)."""
    server = MCPServer("tracker")
    seen = seen or Seen()

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return f"echo: {text}"

    @server.tool()
    def delete_repo(repo: str) -> str:
        """Delete a repository."""
        return f"deleted {repo}"

    @server.tool()
    def fail() -> str:
        """Always fails."""
        raise ToolError("the tracker is read-only today")

    @server.tool()
    async def hang() -> str:
        """Never answers."""
        seen.hang_started.set()
        try:
            await anyio.sleep_forever()
        finally:
            seen.hang_ended.set()
        return "never"

    @server.tool()
    def greeting() -> str:
        """The GREETING environment variable the gateway set from a reference."""
        return os.environ.get("GREETING", "unset")

    @server.tool()
    def picture() -> list:
        """A caption and a PNG (content other than text)."""
        return ["a red dot", Image(data=PNG, format="png")]

    @server.tool()
    async def count(steps: int, ctx: Context) -> str:
        """Counts to `steps`, reporting progress at each step."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
        return f"counted to {steps}"

    @server.tool()
    async def retire(tool: str, ctx: Context) -> str:
        """Stop offering `tool`, and say so (list_changed)."""
        server.remove_tool(tool)
        await announce(ctx)
        return f"retired {tool}"

    @server.tool()
    async def offer(tool: str, ctx: Context) -> str:
        """Offer one more tool named `tool`, and say so (list_changed)."""
        add_tool(server, tool)
        await announce(ctx)
        return f"offered {tool}"

    @server.tool()
    def end_streams() -> str:
        """Close every subscriptions/listen stream gracefully, as a server that bounds how long one lives does."""
        # Test-only peek into the SDK's private state (mcp 2.x): the listen handler MCPServer registered.
        server._lowlevel_server._request_handlers["subscriptions/listen"].handler.close()
        return "ended"

    @server.tool()
    def crash() -> str:
        """Ends the server's process mid-call (an upstream that dies)."""
        os._exit(3)

    add_documents(server)
    return server


def add_documents(server: MCPServer) -> None:
    """Resources note://alpha and note://secret, the template note://{id}, and the prompts review, plan and broken."""

    @server.resource("note://alpha", name="alpha", description="The alpha note.", mime_type="text/plain")
    def alpha() -> str:
        return "alpha text"

    @server.resource("note://secret", name="secret", description="The secret note.", mime_type="text/plain")
    def secret() -> str:
        return "secret text"

    @server.resource("note://{id}", name="note", description="Any note by its id.", mime_type="text/plain")
    def note(id: str) -> str:
        if id == "missing":
            raise ValueError("there is no note missing")
        return f"note {id}"

    @server.resource("blob://dot", name="dot", description="A PNG.", mime_type="image/png")
    def dot() -> bytes:
        return PNG

    @server.resource("slow://forever", name="forever", description="Never answers.")
    async def forever() -> str:
        await anyio.sleep_forever()
        return "never"

    @server.prompt(description="Ask for a review of one topic.")
    def review(topic: str) -> str:
        return f"Please review {topic}."

    @server.prompt(description="Plan the day.")
    def plan() -> str:
        return "Plan the day."

    @server.prompt(description="Always fails.")
    def broken() -> str:
        raise ValueError("the prompt store is offline")


async def announce(ctx: Context) -> None:
    """tools/list_changed: to every listen stream (2026-07-28), or to the calling session (a 2025-11-25 handshake)."""
    if ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await ctx.notify_tools_changed()
    else:
        await ctx.request_context.session.send_tool_list_changed()


async def read_body(receive) -> bytes:
    """The whole body of an ASGI request, read from `receive` (then handed on with `replaying`)."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


def legacy_only(app):
    """`app`, refusing the 2026-07-28 `server/discover` probe (404, as a server of the handshake era does)."""

    async def wrapped(scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        body = await read_body(receive)
        if b'"server/discover"' in body:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Not Found"})
            return
        await app(scope, replaying(body, receive), send)

    return wrapped


def replaying(body: bytes, receive):
    """An ASGI receive that hands out `body` (already read) first, then defers to `receive`."""
    replayed = False

    async def replay():
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def reword_echo(server: MCPServer, description: str) -> None:
    """Change echo's description between two reads (a rug pull: the same tool now asks for something else)."""
    server.remove_tool("echo")

    def echo(text: str) -> str:
        return f"echo: {text}"

    server.add_tool(echo, description=description)


def add_tool(server: MCPServer, name: str) -> None:
    """Offer one more tool, `name`, that answers with its own name."""

    def answer() -> str:
        return name

    server.add_tool(answer, name=name, description=f"The {name} tool.")


def reword_review(server: MCPServer, description: str) -> None:
    """Change the review prompt's description between two reads (a rug pull on a prompt)."""
    server.remove_prompt("review")

    def review(topic: str) -> str:
        return f"Please review {topic}."

    server.add_prompt(Prompt.from_function(review, description=description))


def add_prompt(server: MCPServer, name: str) -> None:
    """Offer one more prompt, `name`, whose text is its own name."""

    def answer() -> str:
        return name

    server.add_prompt(Prompt.from_function(answer, name=name, description=f"The {name} prompt."))


# The 8-byte PNG signature: enough to show bytes pass through untouched.
PNG = b"\x89PNG\r\n\x1a\n"

if __name__ == "__main__":
    tracker().run("stdio")
