"""A small upstream MCP server made with the SDK's MCPServer: served over HTTP by the tests, or run as a stdio script.

    python upstream_server.py        serves it on stdin/stdout
"""

from __future__ import annotations

import os

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def tracker() -> MCPServer:
    """Tools: echo, delete_repo (to be limited by a condition), fail (an error result), hang (never answers), greeting (from the env)."""
    server = MCPServer("tracker")

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
        await anyio.sleep_forever()
        return "never"

    @server.tool()
    def greeting() -> str:
        """The GREETING environment variable the gateway set from a reference."""
        return os.environ.get("GREETING", "unset")

    return server


if __name__ == "__main__":
    tracker().run("stdio")
