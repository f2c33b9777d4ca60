"""`mcp-acl register`: printed snippets parse as each client's format; --write merges with a backup."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.client_configs import CLIENTS
from mcp_acl.store import PolicyAdmin
from tests.gateway.harness import make_world
from tests.oauth.harness import ALICE_TOOLS

URL = "https://acl.example.com/mcp"


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["register", *args], prog_name="mcp-acl", env=env)


@pytest.mark.parametrize("client, key", [("claude-desktop", "mcpServers"), ("vscode", "servers"), ("cursor", "mcpServers"), ("inspector", "mcpServers")])
def test_printed_snippet_is_the_clients_format(client, key):
    result = run(client, "--url", URL)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    entry = document[key]["mcp-acl"]
    assert URL in (entry.get("url"), *entry.get("args", []))


def test_default_url_is_the_resource_url(monkeypatch):
    monkeypatch.setenv("MCP_ACL_RESOURCE_URL", URL)
    assert json.loads(run("vscode").stdout)["servers"]["mcp-acl"]["url"] == URL


def test_write_merges_into_an_existing_file_and_keeps_a_backup(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"servers": {"other": {"type": "stdio", "command": "x"}}, "inputs": []}))
    result = run("vscode", "--url", URL, "--write", "--config-file", str(path))
    assert result.exit_code == 0, result.output
    written = json.loads(path.read_text())
    assert written["servers"]["other"] == {"type": "stdio", "command": "x"} and written["inputs"] == []
    assert written["servers"]["mcp-acl"] == {"type": "http", "url": URL}
    backups = list(tmp_path.glob("mcp.json.*.bak"))
    assert len(backups) == 1 and json.loads(backups[0].read_text())["servers"] == {"other": {"type": "stdio", "command": "x"}}


def test_write_again_with_the_same_entry_says_unchanged_and_makes_no_backup(tmp_path):
    path = tmp_path / "mcp.json"
    assert run("vscode", "--url", URL, "--write", "--config-file", str(path)).exit_code == 0
    written = path.read_bytes()
    result = run("vscode", "--url", URL, "--write", "--config-file", str(path))
    assert result.exit_code == 0, result.output
    assert "already up to date: nothing written" in result.stdout and "replaced" not in result.stdout
    assert list(tmp_path.glob("mcp.json.*.bak")) == []
    assert path.read_bytes() == written


def test_write_with_another_url_replaces_and_keeps_a_backup(tmp_path):
    path = tmp_path / "mcp.json"
    assert run("vscode", "--url", URL, "--write", "--config-file", str(path)).exit_code == 0
    result = run("vscode", "--url", "https://other.example.com/mcp", "--write", "--config-file", str(path))
    assert result.exit_code == 0 and "replaced server 'mcp-acl'" in result.stdout
    assert len(list(tmp_path.glob("mcp.json.*.bak"))) == 1


def test_write_refuses_an_invalid_json_file(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text("{ not json")
    result = run("cursor", "--url", URL, "--write", "--config-file", str(path))
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    assert path.read_text() == "{ not json"


def test_stdio_with_a_token_launches_mcp_acl_stdio(tmp_path):
    result = run("claude-desktop", "--stdio", "--token", "abc.def.ghi", "--database", f"sqlite:///{tmp_path}/x.db")
    entry = json.loads(result.stdout)["mcpServers"]["mcp-acl"]
    assert entry["args"][-1] == "stdio"
    assert entry["env"]["MCP_ACL_TOKEN"] == "abc.def.ghi"
    assert entry["env"]["MCP_ACL_DATABASE_URL"] == f"sqlite:///{tmp_path}/x.db"


def test_stdio_mints_a_token_for_a_user(engine, database_url):
    PolicyAdmin(engine).add_user("alice")
    result = run("vscode", "--stdio", "--user", "alice", "--database", database_url)
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["servers"]["mcp-acl"]
    assert entry["type"] == "stdio" and entry["env"]["MCP_ACL_TOKEN"].count(".") == 2


@pytest.mark.parametrize(("who", "says"), [
    (("--user", "nobody"), "user 'nobody' does not exist"),
    (("--user", "alice", "--client", "typo"), "client 'typo' does not exist"),
])
def test_stdio_mints_only_what_mcp_acl_token_would(engine, database_url, who, says):
    PolicyAdmin(engine).add_user("alice")
    result = run("vscode", "--stdio", *who, "--database", database_url)
    assert result.exit_code == 2 and says in result.stderr
    assert "MCP_ACL_TOKEN" not in result.stdout


@pytest.mark.parametrize("args", [
    ("emacs",), ("vscode", "--stdio"), ("vscode", "--stdio", "--url", URL), ("vscode", "--user", "alice"), ("vscode", "--name", "a b"),
])
def test_bad_requests_exit_2_with_one_line(args):
    result = run(*args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:")


def test_every_client_is_known_to_the_command():
    assert all(run(client, "--url", URL).exit_code == 0 for client in CLIENTS)


async def test_stdio_entry_launches_a_server_that_lists_the_users_tools(sqlite_url, tmp_path, subprocess_env):
    world = make_world(sqlite_url, tmp_path / "home")
    world.engine.dispose()
    result = run("cursor", "--stdio", "--user", "alice", "--database", sqlite_url)
    entry = json.loads(result.stdout)["mcpServers"]["mcp-acl"]
    # The test's environment only adds PYTHONPATH, so `python -m mcp_acl` finds this checkout.
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env={**subprocess_env, **entry["env"]})
    async with Client(params, mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names == ALICE_TOOLS
