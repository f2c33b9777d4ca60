"""mcpo, the MCP-to-OpenAPI proxy Open WebUI uses, installed from PyPI into its own environment, in
front of mcp-acl.

mcpo turns each tool it lists into an OpenAPI route when it starts, and Open WebUI calls those routes.
It holds one MCP connection, so one identity, per process: each user (or each group of users who may do
the same things) gets their own mcpo with their own token. These tests call its routes as Open WebUI
does, over HTTP.

What mcpo does not do, and what mcp-acl does about it: it lists tools only at start, so a revoked grant
keeps its route and mcp-acl refuses the call (mcpo answers 500, mcp-acl's text inside its `Unexpected error`). Version 0.0.20 runs only beside `mcp<2` and `fastapi<0.141`, so those are installed with it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from clients.conftest import ALICE_TOOLS, BOB_TOOLS, Stage, write_json
from support.installs import installed
from mcp_acl.store import PolicyAdmin

# The version these tests were written against (docs/clients.md records it too), with the pins it needs.
PACKAGE, VERSION, ALSO = "mcpo", "0.0.20", ("mcp<2", "fastapi<0.141")
SERVER = "acl"  # the key in mcpo's config: its tools are served under /acl/


@pytest.fixture(scope="session")
def mcpo_program() -> Path:
    return installed(PACKAGE, VERSION, "mcpo", ALSO)


@contextmanager
def running_mcpo(program: Path, stage: Stage, token: str, folder: Path) -> Iterator[httpx2.Client]:
    """mcpo for one user (the recipe in docs/clients.md); yields an HTTP client on its /acl/ routes."""
    folder.mkdir()
    config = folder / "mcpo.json"
    write_json(config, {"mcpServers": {SERVER: {
        "type": "streamable-http", "url": stage.live.mcp_url, "headers": {"Authorization": f"Bearer {token}"}}}})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = folder / "mcpo.log"
    with log.open("w") as out:
        process = subprocess.Popen([str(program), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                                   env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    try:
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}/{SERVER}", timeout=60) as http:
            deadline = time.monotonic() + 120  # a guard against an mcpo that never comes up, not a measurement
            while True:
                try:
                    if http.get("/openapi.json").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mcpo did not start; its log ends with:\n{log.read_text()[-3000:]}")
                time.sleep(0.1)
            yield http
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def routes(http: httpx2.Client) -> set[str]:
    """The tools mcpo serves, as Open WebUI discovers them: the paths of its OpenAPI document."""
    return {path.lstrip("/") for path in http.get("/openapi.json").json()["paths"]}


def test_each_user_through_their_own_mcpo_sees_their_catalogue_and_every_call_is_decided(stage, mcpo_program, tmp_path):
    with running_mcpo(mcpo_program, stage, stage.mint("alice"), tmp_path / "alice") as alice, \
            running_mcpo(mcpo_program, stage, stage.mint("bob"), tmp_path / "bob") as bob:
        assert routes(alice) == ALICE_TOOLS
        assert routes(bob) == BOB_TOOLS
        allowed = alice.post("/files.read", json={"path": "reports/q3.md"})
        assert allowed.status_code == 200 and "Revenue grew 12%" in allowed.text
        # Refused by mcp-acl (the grant's condition): mcpo wraps the tool error in its own 500,
        # {"detail": {"message": "Unexpected error", "error": "500: {'message': 'Refused: …'}"}}.
        refused = alice.post("/files.read", json={"path": "notes/todo.txt"})
        assert refused.status_code == 500
        assert "Refused: tool:files.read" in refused.json()["detail"]["error"]
        # mcpo made its routes at start: the revoked grant keeps its route, and mcp-acl refuses the call.
        PolicyAdmin(stage.world.engine, actor="test").revoke(stage.world.grants["alice-read"])
        assert "files.read" in routes(alice)
        gone = alice.post("/files.read", json={"path": "reports/q3.md"})
        assert gone.status_code == 500
        assert "No tool named files.read is available to you." in gone.json()["detail"]["error"]
        assert bob.post("/files.list", json={}).status_code == 200
    assert stage.decisions("alice") == [("tools/call", "tool:files.read", d) for d in ("allow", "deny", "deny")]
    assert stage.decisions("bob") == [("tools/call", "tool:files.list", "allow")]
