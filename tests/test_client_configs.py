"""Agent client configuration: each client's format, its default file, merging with a backup."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mcp_acl.client_configs import (
    CLIENTS,
    ClientConfigError,
    StdioLaunch,
    default_config_path,
    merge_into_file,
    server_entry,
    snippet,
)

URL = "http://127.0.0.1:8000/mcp"
LAUNCH = StdioLaunch("/usr/bin/mcp-acl", ["stdio"], {"MCP_ACL_TOKEN": "t0ken"})


def test_remote_entries_in_each_clients_format():
    assert snippet("vscode", "acl", server_entry("vscode", url=URL)) == {"servers": {"acl": {"type": "http", "url": URL}}}
    assert snippet("cursor", "acl", server_entry("cursor", url=URL)) == {"mcpServers": {"acl": {"url": URL}}}
    assert snippet("inspector", "acl", server_entry("inspector", url=URL)) == {"mcpServers": {"acl": {"type": "http", "url": URL}}}
    assert snippet("claude-desktop", "acl", server_entry("claude-desktop", url=URL)) == {
        "mcpServers": {"acl": {"command": "npx", "args": ["-y", "mcp-remote", URL]}}
    }


def test_claude_desktop_bridge_allows_http_only_when_the_url_needs_it():
    entry = server_entry("claude-desktop", url="http://10.1.2.3:8000/mcp")
    assert entry["args"][-1] == "--allow-http"
    assert "--allow-http" not in server_entry("claude-desktop", url="https://acl.example.com/mcp")["args"]


@pytest.mark.parametrize("client", CLIENTS)
def test_stdio_entries_launch_mcp_acl_with_the_token(client):
    entry = server_entry(client, stdio=LAUNCH)
    assert entry["command"] == "/usr/bin/mcp-acl" and entry["args"] == ["stdio"]
    assert entry["env"] == {"MCP_ACL_TOKEN": "t0ken"}
    assert entry.get("type", "stdio") == "stdio"


def test_unknown_client_and_bad_url_are_refused():
    with pytest.raises(ClientConfigError):
        server_entry("emacs", url=URL)
    with pytest.raises(ClientConfigError):
        server_entry("vscode", url="ftp://x/mcp")
    with pytest.raises(ClientConfigError):
        server_entry("vscode")


def test_default_paths_per_platform(tmp_path):
    home = tmp_path
    assert default_config_path("claude-desktop", platform="darwin", home=home, env={}) == (
        home / "Library/Application Support/Claude/claude_desktop_config.json"
    )
    assert default_config_path("claude-desktop", platform="win32", home=home, env={"APPDATA": "C:/Users/a/AppData/Roaming"}) == (
        Path("C:/Users/a/AppData/Roaming/Claude/claude_desktop_config.json")
    )
    assert default_config_path("claude-desktop", platform="linux", home=home, env={}) == home / ".config/Claude/claude_desktop_config.json"
    assert default_config_path("vscode", platform="linux", home=home, env={"XDG_CONFIG_HOME": "/x"}) == Path("/x/Code/User/mcp.json")
    assert default_config_path("vscode", platform="darwin", home=home, env={}) == home / "Library/Application Support/Code/User/mcp.json"
    assert default_config_path("cursor", platform="win32", home=home, env={}) == home / ".cursor/mcp.json"
    assert default_config_path("inspector", home=home, env={}) == home / ".mcp-inspector/mcp.json"
    assert default_config_path("inspector", home=home, env={"MCP_CATALOG_PATH": "/c.json"}) == Path("/c.json")


def test_merge_keeps_the_rest_of_the_file_and_leaves_a_backup(tmp_path):
    path = tmp_path / "mcp.json"
    original = {"inputs": [{"id": "k", "type": "promptString"}], "servers": {"github": {"type": "http", "url": "https://gh"}}, "x": 1}
    path.write_text(json.dumps(original))
    result = merge_into_file(path, "vscode", "mcp-acl", server_entry("vscode", url=URL))
    written = json.loads(path.read_text())
    assert written == {**original, "servers": {**original["servers"], "mcp-acl": {"type": "http", "url": URL}}}
    assert result.backup is not None and json.loads(result.backup.read_text()) == original
    assert not result.replaced


def test_merge_replaces_a_server_of_the_same_name(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"mcp-acl": {"url": "http://old/mcp"}}}))
    result = merge_into_file(path, "cursor", "mcp-acl", server_entry("cursor", url=URL))
    assert result.replaced and json.loads(path.read_text()) == {"mcpServers": {"mcp-acl": {"url": URL}}}


def test_merge_creates_a_missing_file_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "new" / "claude_desktop_config.json"
    result = merge_into_file(path, "claude-desktop", "mcp-acl", server_entry("claude-desktop", stdio=LAUNCH))
    assert result.backup is None
    assert json.loads(path.read_text())["mcpServers"]["mcp-acl"]["env"]["MCP_ACL_TOKEN"] == "t0ken"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_token_written_into_a_shared_file_makes_it_private(tmp_path):
    path = tmp_path / "claude_desktop_config.json"
    path.write_text("{}")
    path.chmod(0o644)
    merge_into_file(path, "claude-desktop", "mcp-acl", server_entry("claude-desktop", stdio=LAUNCH))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_entry_without_a_token_keeps_the_files_mode(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text("{}")
    path.chmod(0o644)
    merge_into_file(path, "cursor", "mcp-acl", server_entry("cursor", url=URL))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("content", ['{"servers": {}, // comment\n}', "[1, 2]", '{"servers": []}', "\xff"])
def test_merge_refuses_a_file_it_cannot_read_as_a_json_object(tmp_path, content):
    path = tmp_path / "mcp.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ClientConfigError):
        merge_into_file(path, "vscode", "mcp-acl", server_entry("vscode", url=URL))
    assert path.read_bytes() == content.encode("latin-1")
    assert list(tmp_path.iterdir()) == [path]
