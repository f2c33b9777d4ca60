"""The stage every client test plays on: mcp-acl served over real HTTP on loopback (alice and bob with
different grants, see gateway/harness.py), the scripted Ollama server as the model, and the admin CLI in
another process for what an operator would do (mint a token, revoke one)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from auth.support import LoopbackServer
from gateway.harness import LiveServer, World, cli, serve, sqlite_world  # noqa: F401 (fixture)
from mcp_acl.cli.tokens import mint_checked
from mcp_acl.store import tables as t
from support.ollama_double import OllamaDouble

MODEL = "qwen3:4b"
ALICE_TOOLS = {"files.list", "files.read", "files.write", "sql.select"}
BOB_TOOLS = {"files.list"}


@dataclass
class Stage:
    """mcp-acl and the scripted Ollama, both live; what the tests need to drive and inspect them."""

    world: World
    live: LiveServer
    ollama: OllamaDouble
    ollama_url: str
    env: dict[str, str]

    def admin(self, *args: str) -> subprocess.CompletedProcess:
        """`mcp-acl ARGS --database …` as the operator runs it; fails the test if the command does."""
        done = cli(self.env, *args, "--database", self.world.database_url)
        assert done.returncode == 0, done.stderr
        return done

    def mint(self, user: str) -> str:
        """A short-lived JWT for `user` from what `mcp-acl token --user USER --ttl 30m` runs (in this
        process, to spare an interpreter start): recorded, so `token revoke --user` finds it."""
        return mint_checked(self.world.database_url, user=user, client=None, ttl=timedelta(minutes=30))

    def personal_token(self, user: str, name: str) -> str:
        """A personal access token, as the operator makes one: `mcp-acl token create --user USER --name NAME`."""
        return self.admin("token", "create", "--user", user, "--name", name, "--expires", "1d").stdout.strip()

    def offered(self, chat: int = -1) -> set[str]:
        """The tool names a client put in one `/api/chat` request to the model (the last by default)."""
        return {tool["function"]["name"] for tool in self.ollama.chats[chat].get("tools") or []}

    def tool_messages(self) -> list[dict]:
        """Every tool result the client sent back to the model, oldest first (each chat repeats the history)."""
        seen: list[dict] = []
        for chat in self.ollama.chats:
            for message in chat["messages"]:
                if message["role"] == "tool" and message not in seen:
                    seen.append(message)
        return seen

    def decisions(self, subject: str) -> list[tuple[str | None, str | None, str | None]]:
        """(action, target, decision) of every decision audited for `subject`, oldest first."""
        events = t.audit_events.c
        query = (select(events.action, events.target, events.decision)
                 .where(events.subject == subject, events.decision.is_not(None)).order_by(events.id))
        with self.world.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]


    def refused_requests(self) -> list[str]:
        """The reasons of every request refused for its token (audited before anything is read or run)."""
        events = t.audit_events.c
        query = select(events.reason).where(events.action == "authenticate", events.decision == "deny").order_by(events.id)
        with self.world.engine.connect() as conn:
            return list(conn.execute(query).scalars())


@pytest.fixture
def stage(sqlite_world, subprocess_env) -> Iterator[Stage]:
    """mcp-acl over the test world, and an empty scripted Ollama; tests script its turns."""
    ollama = OllamaDouble()
    with serve(sqlite_world) as live, LoopbackServer(ollama.app) as ollama_url:
        yield Stage(sqlite_world, live, ollama, ollama_url, subprocess_env)


def write_json(path, value) -> None:
    """A client's configuration file, private to its owner (it may hold a bearer token)."""
    path.write_text(json.dumps(value, indent=2))
    path.chmod(0o600)
