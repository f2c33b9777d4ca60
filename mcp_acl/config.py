"""Settings read from the environment (and overridden by command-line options)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_RESOURCE_URL = "http://127.0.0.1:8000/mcp"


def data_home() -> Path:
    """`MCP_ACL_HOME`, or `~/.local/share/mcp-acl`: where the default database lives."""
    home = os.environ.get("MCP_ACL_HOME")
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "mcp-acl"


def database_url(override: str | None = None) -> str:
    """`--database`, else `MCP_ACL_DATABASE_URL`, else an SQLite file in the data home."""
    if override:
        return override
    url = os.environ.get("MCP_ACL_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_home() / 'mcp-acl.db'}"


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment, in one place."""

    database_url: str
    resource_url: str = DEFAULT_RESOURCE_URL
    issuer: str | None = None
    jwks_url: str | None = None
    roles_claim: str | None = None
    required_scope: str = "mcp"
    tools_path: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, database: str | None = None) -> "Settings":
        """Read the `MCP_ACL_*` variables."""
        env = os.environ
        tools = tuple(Path(p).expanduser() for p in env.get("MCP_ACL_TOOLS_PATH", "").split(os.pathsep) if p)
        return cls(
            database_url=database_url(database),
            resource_url=env.get("MCP_ACL_RESOURCE_URL", DEFAULT_RESOURCE_URL),
            issuer=env.get("MCP_ACL_ISSUER") or None,
            jwks_url=env.get("MCP_ACL_JWKS_URL") or None,
            roles_claim=env.get("MCP_ACL_ROLES_CLAIM") or None,
            required_scope=env.get("MCP_ACL_SCOPE", "mcp"),
            tools_path=tools,
        )
