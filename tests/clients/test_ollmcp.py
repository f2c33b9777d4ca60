"""mcp-client-for-ollama (`ollmcp`), installed from PyPI into its own environment, in front of mcp-acl.

ollmcp is a terminal chat with no non-interactive mode, so these tests run it on a pseudo-terminal and
type into it like its user would, with its model on the scripted Ollama. Each user runs their own
ollmcp with their own token: a static `Authorization` header in its servers file (it has no OAuth sign-in
and does not expand variables there). Tool calls are confirmed by a person by default; the config turns
that off so the test does not have to answer each prompt.

What ollmcp does not do, and what mcp-acl does about it: it lists tools once, when it connects, and
ignores `list_changed`, so a revoked grant stays in the tools it offers the model and mcp-acl refuses the
call; it never renews or replaces its token, and when its personal token is revoked its next call fails (a 401
from mcp-acl, which runs nothing and audits the refusal) until the user restarts it with a new one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clients.conftest import ALICE_TOOLS, BOB_TOOLS, MODEL, Stage, write_json
from support.installs import installed
from clients.terminal import Terminal
from mcp_acl.store import PolicyAdmin
from support.ollama_double import call, say

# The version these tests were written against (docs/clients.md records it too).
PACKAGE, VERSION = "mcp-client-for-ollama", "0.35.1"
SERVER = "acl"  # the key in the servers file; ollmcp names tools acl.files.read and sends acl_files_read
PROMPT = r"-tools?❯"  # the end of its input prompt: "qwen3/show-thinking/4-tools❯", "…/1-tool❯"


@pytest.fixture(scope="session")
def ollmcp_program() -> Path:
    return installed(PACKAGE, VERSION, "ollmcp")


@contextmanager
def running_ollmcp(program: Path, stage: Stage, token: str, folder: Path) -> Iterator[Terminal]:
    """ollmcp for one user (the recipe in docs/clients.md), at its first prompt."""
    home = folder / "home"
    (home / ".config" / "ollmcp").mkdir(parents=True)
    # Its own settings live under ~/.config/ollmcp: a HOME of its own keeps the test away from yours.
    write_json(home / ".config" / "ollmcp" / "config.json", {"hilSettings": {"enabled": False}})
    servers = folder / "servers.json"
    write_json(servers, {"mcpServers": {SERVER: {
        "type": "http", "url": stage.live.mcp_url, "headers": {"Authorization": f"Bearer {token}"}}}})
    env = {**os.environ, "HOME": str(home), "TERM": "xterm-256color"}
    argv = [str(program), "--servers-json", str(servers), "--host", stage.ollama_url, "--model", MODEL]
    terminal = Terminal(argv, env, home)
    try:
        terminal.expect(PROMPT, timeout=120)
        yield terminal
    finally:
        terminal.close()


def ask(terminal: Terminal, question: str, answer: str) -> None:
    """Type a question; wait until the model's (scripted) answer is on screen and the prompt is back."""
    terminal.type(question)
    terminal.expect(re.escape(answer))
    terminal.expect(PROMPT)


def wire(tools: set[str]) -> set[str]:
    return {f"{SERVER}_{name.replace('.', '_')}" for name in tools}


def test_each_user_in_their_own_ollmcp_sees_their_catalogue_and_every_call_is_decided(stage, ollmcp_program, tmp_path):
    with running_ollmcp(ollmcp_program, stage, stage.mint("alice"), tmp_path / "alice") as alice:
        # Allowed: ollmcp runs the call through mcp-acl and hands the result to the model.
        stage.ollama.add(call("acl_files_read", path="reports/q3.md"), say("Q3 went well."))
        ask(alice, "How did Q3 go?", "Q3 went well.")
        assert stage.offered() == wire(ALICE_TOOLS)
        assert "Revenue grew 12%" in stage.tool_messages()[-1]["content"]
        # Refused by mcp-acl (the grant's condition): shown to the user, read by the model.
        stage.ollama.add(call("acl_files_read", path="notes/todo.txt"), say("I may not read that."))
        ask(alice, "What is on my to-do list?", "I may not read that.")
        assert stage.tool_messages()[-1]["content"].startswith("Refused: tool:files.read")
        assert "Refused: tool:files.read" in alice.screen()
        # ollmcp keeps the list it got at start: the revoked grant is still offered, and still refused.
        PolicyAdmin(stage.world.engine, actor="test").revoke(stage.world.grants["alice-read"])
        stage.ollama.add(call("acl_files_read", path="reports/q3.md"), say("Not any more."))
        ask(alice, "And Q3 again?", "Not any more.")
        assert "acl_files_read" in stage.offered()
        assert stage.tool_messages()[-1]["content"].startswith("No tool named files.read is available to you.")
    with running_ollmcp(ollmcp_program, stage, stage.mint("bob"), tmp_path / "bob") as bob:
        stage.ollama.add(call("acl_files_list"), say("Two folders."))
        ask(bob, "What is there?", "Two folders.")
        assert stage.offered() == wire(BOB_TOOLS)
    assert stage.decisions("alice") == [("tools/call", "tool:files.read", d) for d in ("allow", "deny", "deny")]
    assert stage.decisions("bob") == [("tools/call", "tool:files.list", "allow")]


def test_a_revoked_personal_token_stops_ollmcp_at_the_next_call(stage, ollmcp_program, tmp_path):
    with running_ollmcp(ollmcp_program, stage, stage.personal_token("alice", "ollmcp"), tmp_path / "alice") as alice:
        stage.admin("token", "revoke", "ollmcp")
        stage.ollama.add(call("acl_files_read", path="reports/q3.md"), say("The call failed."))
        ask(alice, "How did Q3 go?", "The call failed.")
        # ollmcp shows the failure and tells the model; nothing ran.
        assert "Error calling tool acl.files.read" in alice.screen()
        assert stage.tool_messages()[-1]["content"].startswith("Error calling tool acl.files.read")
    assert [d for d in stage.decisions("alice") if d[0] == "tools/call"] == []
    assert "the personal access token 'ollmcp' was revoked" in " ".join(stage.refused_requests())
