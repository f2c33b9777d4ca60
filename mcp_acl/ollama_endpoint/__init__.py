"""Ollama's own API, governed: any Ollama app gets the caller's tools with no MCP support of its own.

`mcp-acl serve --ollama` answers under `/ollama` (so an app runs with
`OLLAMA_HOST=http://HOST:8000/ollama`) and forwards to the real Ollama:

    /api/chat            the governed chat: the caller's catalogue as tools, the
                         access-policy prompt first, the tool loop run here
                         (agent/loop.py's ToolLoop, the one `mcp-acl agent` runs),
                         every call decided, audited and run in-process
    /api/tags, /api/ps, /api/version, /api/show, /     forwarded as they are
    anything else        404: pulling, deleting or creating models is not an app's to do

Every request carries a bearer token, verified like those on /mcp
(auth/middleware.py). A trusted front-end (Open WebUI) may name the signed-in
user in a header; see callers.py. docs/ollama.md has the whole story.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointSettings:
    """How `serve --ollama` was configured."""

    # The real Ollama, e.g. http://127.0.0.1:11434.
    upstream: str
    # The client allowed to name a user in `user_header`; both or neither.
    trusted_client: str | None = None
    user_header: str | None = None

    def __post_init__(self) -> None:
        if (self.trusted_client is None) != (self.user_header is None):
            raise ValueError("--ollama-trusted-client and --ollama-user-header go together: give both or neither")
