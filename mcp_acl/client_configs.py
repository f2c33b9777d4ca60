"""Configuration snippets for agent clients, and merging them into their files.

Each client reads a JSON file with a map of servers:

- Claude Desktop, `claude_desktop_config.json`, `mcpServers`: launched
  processes only (remote servers are added in its Settings > Connectors, from
  Anthropic's cloud, which cannot reach a server on your machine), so a
  remote mcp-acl is reached through `npx -y mcp-remote URL`, which runs the
  OAuth sign-in in the browser;
- VS Code, `mcp.json` (user profile or `.vscode/`), `servers`, with
  `"type": "http"` and `url` (or `"type": "stdio"`);
- Cursor, `~/.cursor/mcp.json`, `mcpServers`, with `url` (or `command`);
- the MCP Inspector (v2), its catalogue `~/.mcp-inspector/mcp.json`
  (`MCP_CATALOG_PATH`), `mcpServers`, with `"type": "http"` and `url`.

Merging keeps everything else in the file, writes a backup first, and
refuses a file that is not a JSON object (VS Code allows comments in its
JSON; such a file is refused rather than rewritten without them).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

CLIENTS = ("claude-desktop", "vscode", "cursor", "inspector")
_SERVERS_KEY = {"claude-desktop": "mcpServers", "vscode": "servers", "cursor": "mcpServers", "inspector": "mcpServers"}


class ClientConfigError(ValueError):
    """A configuration that cannot be produced or written (nothing was changed)."""


@dataclass(frozen=True)
class StdioLaunch:
    """How a client starts `mcp-acl stdio` itself."""

    command: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


def servers_key(client: str) -> str:
    """The top-level key under which `client` keeps its servers."""
    if client not in _SERVERS_KEY:
        raise ClientConfigError(f"unknown client {client!r}: choose one of {', '.join(CLIENTS)}")
    return _SERVERS_KEY[client]


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_entry(client: str, *, url: str | None = None, stdio: StdioLaunch | None = None) -> dict:
    """The value a client's file holds for one server: remote (`url`) or launched (`stdio`)."""
    servers_key(client)
    if (url is None) == (stdio is None):
        raise ClientConfigError("give either a URL or a stdio launch")
    if stdio is not None:
        entry = {"command": stdio.command, "args": list(stdio.args), "env": dict(stdio.env)}
        return {"type": "stdio", **entry} if client in ("vscode", "inspector") else entry
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientConfigError(f"not an http(s) URL: {url!r}")
    if client == "claude-desktop":
        # mcp-remote refuses plain http away from loopback unless told otherwise.
        extra = ["--allow-http"] if parts.scheme == "http" and not _is_loopback(url) else []
        return {"command": "npx", "args": ["-y", "mcp-remote", url, *extra]}
    if client == "cursor":
        return {"url": url}
    return {"type": "http", "url": url}


def snippet(client: str, name: str, entry: dict) -> dict:
    """A whole configuration file holding just this server."""
    return {servers_key(client): {name: entry}}


def default_config_path(client: str, *, platform: str | None = None, home: Path | None = None,
                        env: dict[str, str] | None = None) -> Path:
    """Where `client` keeps its user-wide configuration on this platform."""
    servers_key(client)
    platform = platform or sys.platform
    home = home or Path.home()
    env = os.environ if env is None else env
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    if client == "inspector":
        return Path(env["MCP_CATALOG_PATH"]) if env.get("MCP_CATALOG_PATH") else home / ".mcp-inspector" / "mcp.json"
    if platform == "darwin":
        base = home / "Library" / "Application Support"
    elif platform.startswith("win"):
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    if client == "claude-desktop":
        return base / "Claude" / "claude_desktop_config.json"
    return base / "Code" / "User" / "mcp.json"


def _read_document(path: Path, client: str) -> dict:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClientConfigError(
            f"{path} is not valid JSON ({exc.__class__.__name__}; comments are not supported): nothing was written"
        ) from exc
    if not isinstance(document, dict):
        raise ClientConfigError(f"{path} does not hold a JSON object: nothing was written")
    servers = document.get(servers_key(client))
    if servers is not None and not isinstance(servers, dict):
        raise ClientConfigError(f"{path}: {servers_key(client)!r} is not an object: nothing was written")
    return document


@dataclass(frozen=True)
class WriteResult:
    """What merging into a file did."""

    path: Path
    backup: Path | None
    replaced: bool
    # The file already held exactly this entry: nothing was written, no backup made.
    unchanged: bool = False


def merge_into_file(path: Path, client: str, name: str, entry: dict) -> WriteResult:
    """Put `entry` under `name` in `path`, keeping everything else; back up the old file first.

    When the file already holds exactly `entry` under `name`, nothing is
    written and no backup is made (a backup per run would pile up copies of
    an unchanged file).
    """
    document = _read_document(path, client)
    key = servers_key(client)
    servers = dict(document.get(key) or {})
    if servers.get(name) == entry:
        if entry.get("env") and path.stat().st_mode & 0o077:
            os.chmod(path, path.stat().st_mode & 0o700)  # it carries a token, as a write would ensure
        return WriteResult(path, None, replaced=False, unchanged=True)
    replaced = name in servers
    servers[name] = entry
    document[key] = servers
    backup = None
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        shutil.copy2(path, backup)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    temporary = path.with_name(f".{path.name}.mcp-acl.tmp")
    # A new file is readable by its owner only; an old one keeps its mode,
    # except that an entry carrying a token (stdio's env) takes away every
    # permission of group and others.
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    if entry.get("env"):
        mode &= 0o700
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temporary, mode)  # exactly, whatever the umask
    os.replace(temporary, path)  # atomic: a reader sees the old file or the new one
    return WriteResult(path, backup, replaced)
