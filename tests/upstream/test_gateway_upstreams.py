"""Upstreams end to end: an SDK-made upstream (HTTP on loopback, and stdio as a subprocess), registered
with the CLI, served by the real gateway, called by the SDK's real client with real tokens."""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from auth.support import LoopbackServer  # tests/auth/support.py
from gateway.harness import World, cli, connect, serve, sqlite_world, text_of, wait_for  # noqa: F401 (fixture)
from mcp_acl.store import PolicyAdmin
from tests.upstream.upstream_server import PNG, Seen, legacy_only, read_body, replaying, tracker

SERVER_SCRIPT = Path(__file__).with_name("upstream_server.py")


@pytest.fixture
def seen() -> Seen:
    """What the HTTP upstream saw."""
    return Seen()


@pytest.fixture
def http_upstream(seen) -> Iterator[str]:
    """The tracker upstream over Streamable HTTP on 127.0.0.1, port 0: its /mcp URL."""
    with LoopbackServer(tracker(seen).streamable_http_app(), lifespan="on") as base:
        yield f"{base}/mcp"


def register(world: World, env: dict[str, str], *args: str) -> None:
    """`mcp-acl upstream add ARGS` in another process, as an administrator would."""
    done = cli(env, "upstream", "add", *args, "--database", world.database_url)
    assert done.returncode == 0, done.stderr


async def tool_names(client, prefix: str) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools if t.name.startswith(prefix)}


async def test_an_http_upstream_is_governed_per_identity_per_call(sqlite_world, subprocess_env, http_upstream):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", http_upstream, "--timeout", "2")
    admin = PolicyAdmin(world.engine)
    echo = admin.add_grant("role:analyst", "tool:tracker.echo")
    admin.add_grant("role:analyst", "tool:tracker.delete_repo", condition='args.repo.startsWith("sandbox/")')
    admin.add_grant("role:analyst", "tool:tracker.fail")
    admin.add_grant("role:analyst", "tool:tracker.hang")
    admin.add_grant("role:intern", "tool:tracker.greeting")
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("bob")) as bob:
            # Different slices of one upstream, by grants.
            assert await tool_names(alice, "tracker.") == {"tracker.echo", "tracker.delete_repo", "tracker.fail", "tracker.hang"}
            assert await tool_names(bob, "tracker.") == {"tracker.greeting"}
            result = await alice.call_tool("tracker.echo", {"text": "hi"})
            assert (result.is_error, text_of(result)) == (False, "echo: hi")
            # An argument condition refuses a call; the same tool with allowed arguments runs.
            refused = await alice.call_tool("tracker.delete_repo", {"repo": "prod/api"})
            assert refused.is_error and text_of(refused).startswith("Refused:")
            assert text_of(await alice.call_tool("tracker.delete_repo", {"repo": "sandbox/x"})) == "deleted sandbox/x"
            assert (await bob.call_tool("tracker.echo", {"text": "hi"})).is_error
            # The upstream's error result stays an error result, with its own words.
            failed = await alice.call_tool("tracker.fail", {})
            assert failed.is_error and "read-only today" in text_of(failed)
            # A hanging upstream: one sentence after the configured timeout, and the session still works.
            hung = await alice.call_tool("tracker.hang", {})
            assert (hung.is_error, text_of(hung)) == (True, 'the upstream "tracker" did not answer within 2 s; try again later')
            assert text_of(await alice.call_tool("tracker.echo", {"text": "again"})) == "echo: again"
            # Revoking the grant stops the very next call (the tool is now hidden from alice, so it is unknown to her).
            admin.revoke(echo)
            after = await alice.call_tool("tracker.echo", {"text": "hi"})
            assert after.is_error and text_of(after).startswith("No tool named tracker.echo is available to you")
            assert "tracker.echo" not in await tool_names(alice, "tracker.")
    # Audited like any tool: the decisions, and the upstream's error result as an error outcome.
    assert [r.decision for r in world.audit_rows(target="tool:tracker.delete_repo") if r.decision] == ["deny", "allow"]
    assert [r.outcome for r in world.audit_rows(target="tool:tracker.fail") if r.outcome] == ["error"]


async def test_a_stdio_upstream_gets_its_env_from_references(sqlite_world, subprocess_env, monkeypatch):
    world = sqlite_world
    monkeypatch.setenv("TEST_UPSTREAM_GREETING", "hello from a reference")
    # `add` connects, so it resolves the reference in its own environment too.
    admin_env = {**subprocess_env, "TEST_UPSTREAM_GREETING": "hello from a reference"}
    register(world, admin_env, "local", "--command", f"{sys.executable} {SERVER_SCRIPT}", "--env", "GREETING=env:TEST_UPSTREAM_GREETING")
    for tool in ("greeting", "picture", "crash"):
        PolicyAdmin(world.engine).add_grant("role:intern", f"tool:local.{tool}")
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("bob")) as bob, connect(live.mcp_url, world.token("alice")) as alice:
            assert await tool_names(bob, "local.") == {"local.greeting", "local.picture", "local.crash"}
            assert await tool_names(alice, "local.") == set()
            assert text_of(await bob.call_tool("local.greeting", {})) == "hello from a reference"
            # Content other than text reaches the caller unchanged.
            picture = await bob.call_tool("local.picture", {})
            assert [c.type for c in picture.content] == ["text", "image"]
            assert (base64.b64decode(picture.content[1].data), picture.content[1].mime_type) == (PNG, "image/png")
            # The process dies mid-call: one sentence, then the gateway starts it again and calls work.
            crashed = await bob.call_tool("local.crash", {})
            assert (crashed.is_error, text_of(crashed)) == (True, 'the upstream "local" cannot be reached right now; try again later')

            async def greets() -> bool:
                return not (await bob.call_tool("local.greeting", {})).is_error

            with anyio.fail_after(30):
                while not await greets():
                    await anyio.sleep(0.2)
    # The value was resolved at connect time; the store holds only the reference.
    done = cli(subprocess_env, "policy", "export", "--database", world.database_url)
    assert "env:TEST_UPSTREAM_GREETING" in done.stdout and "hello from a reference" not in done.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_upstreams_down_at_start_do_not_stop_the_gateway(sqlite_world, subprocess_env, monkeypatch):
    """A refused URL, a command that exits at once and a missing credential: the gateway serves the rest."""
    world = sqlite_world
    monkeypatch.delenv("TEST_UPSTREAM_UNSET", raising=False)
    register(world, subprocess_env, "down", "--url", f"http://127.0.0.1:{_closed_port()}/mcp", "--timeout", "2", "--no-connect")
    register(world, subprocess_env, "gone", "--command", f"{sys.executable} -c pass", "--timeout", "2", "--no-connect")
    register(world, subprocess_env, "nokey", "--command", f"{sys.executable} {SERVER_SCRIPT}", "--env", "K=env:TEST_UPSTREAM_UNSET", "--no-connect")
    for name in ("down", "gone", "nokey"):
        PolicyAdmin(world.engine).add_grant("role:analyst", f"tool:{name}.*")
    gateway = world.gateway()
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            for name in ("down.", "gone.", "nokey."):
                assert await tool_names(alice, name) == set()
            # Why each is down is kept (the value of a credential never is: only the reference's name).
            assert "TEST_UPSTREAM_UNSET is not set" in gateway.upstreams.connections["nokey"].last_error
            assert not (await alice.call_tool("files.list", {"path": "reports"})).is_error
            missing = await alice.call_tool("down.anything", {})
            assert missing.is_error and "Traceback" not in text_of(missing)


async def test_an_upstream_down_at_start_keeps_its_pinned_tools_listed_and_refuses_calls_clearly(sqlite_world, subprocess_env, seen):
    """Pinned at add, then down when the gateway starts: its tools stay listed per grants, and a call says it cannot be reached."""
    world = sqlite_world
    with LoopbackServer(tracker(seen).streamable_http_app(), lifespan="on") as base:
        register(world, subprocess_env, "tracker", "--url", f"{base}/mcp", "--timeout", "2")
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:tracker.echo")
    gateway = world.gateway()
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("bob")) as bob:
            assert await tool_names(alice, "tracker.") == {"tracker.echo"}
            assert await tool_names(bob, "tracker.") == set()
            refused = await alice.call_tool("tracker.echo", {"text": "hi"})
            assert refused.is_error
            assert text_of(refused) == 'the upstream "tracker" cannot be reached right now; try again later'
    rows = world.audit_rows(target="tool:tracker.echo")
    assert [r.decision for r in rows if r.decision] == ["allow"] and [r.outcome for r in rows if r.outcome] == ["error"]


def test_catalogue_and_check_show_an_upstreams_tools_by_grants(sqlite_world, subprocess_env, http_upstream):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", http_upstream)
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:intern", "tool:tracker.greeting")
    admin.add_grant("role:intern", "tool:tracker.delete_repo", condition='args.repo.startsWith("sandbox/")')
    shown = cli(subprocess_env, "catalogue", "--user", "bob", "--json", "--database", world.database_url)
    assert shown.returncode == 0, shown.stderr
    names = {t["name"] for t in json.loads(shown.stdout)["tools"]}
    assert {"tracker.greeting", "tracker.delete_repo"} <= names and "tracker.echo" not in names
    refused = cli(subprocess_env, "check", "user:bob", "tool:tracker.delete_repo", "--args", '{"repo": "prod/api"}', "--database", world.database_url)
    allowed = cli(subprocess_env, "check", "user:bob", "tool:tracker.delete_repo", "--args", '{"repo": "sandbox/x"}', "--database", world.database_url)
    assert (refused.returncode, allowed.returncode) == (1, 0)


# Answers that are not MCP: a web page, a proxy's error page, JSON that does not parse.
JUNK = {
    "web page": (200, b"text/html", b"<html><body>Welcome to nginx!</body></html>"),
    "error page": (502, b"text/html", b"<html><body>502 Bad Gateway</body></html>"),
    "broken json": (200, b"application/json", b'{"jsonrpc": "2.0", "id": '),
}


def not_mcp(kind: str):
    """An HTTP server that answers every request with the junk `kind`."""
    status, content_type, body = JUNK[kind]

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": body})

    return app


def junk_for_calls_to(app, tool: str, kind: str):
    """`app`, except that a tools/call of `tool` is answered with the junk `kind` instead of MCP."""

    async def wrapped(scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        body = await read_body(receive)
        if b'"tools/call"' in body and f'"name":"{tool}"'.encode() in body.replace(b" ", b""):
            return await not_mcp(kind)(scope, receive, send)
        await app(scope, replaying(body, receive), send)

    return wrapped


@pytest.mark.parametrize("kind", sorted(JUNK))
async def test_an_upstream_answering_junk_gives_one_sentence(sqlite_world, subprocess_env, kind):
    """Junk from the start (the upstream is down, the gateway serves the rest) and junk for one call."""
    world = sqlite_world
    admin = PolicyAdmin(world.engine)
    with (
        LoopbackServer(not_mcp(kind)) as junk,
        LoopbackServer(junk_for_calls_to(tracker().streamable_http_app(), "echo", kind), lifespan="on") as flaky,
    ):
        register(world, subprocess_env, "junk", "--url", f"{junk}/mcp", "--timeout", "2", "--no-connect")
        register(world, subprocess_env, "flaky", "--url", f"{flaky}/mcp", "--timeout", "2")
        admin.add_grant("role:analyst", "tool:junk.*")
        admin.add_grant("role:analyst", "tool:flaky.*")
        gateway = world.gateway()
        with serve(world, gateway) as live:
            async with connect(live.mcp_url, world.token("alice")) as alice:
                assert await tool_names(alice, "junk.") == set()
                assert gateway.upstreams.connections["junk"].last_error
                unknown = await alice.call_tool("junk.anything", {})
                assert unknown.is_error and text_of(unknown).startswith("No tool named junk.anything")
                # Listed fine, then a call answered with a web page: one sentence, no traceback, no hang.
                assert "flaky.echo" in await tool_names(alice, "flaky.")
                garbled = await alice.call_tool("flaky.echo", {"text": "hi"})
                assert garbled.is_error and len(garbled.content) == 1
                assert text_of(garbled) == 'the upstream "flaky" answered with something that is not MCP; try again later'
                # Its other tools still answer.
                assert text_of(await alice.call_tool("flaky.greeting", {})) == "unset"


class Forgetful:
    """`app` (a handshake-era server) that can forget every session so far, as a restarted server does: 404 for their ids."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: set[bytes] = set()
        self.forgotten: set[bytes] = set()

    def forget(self) -> None:
        self.forgotten |= self.seen

    async def __call__(self, scope, receive, send) -> None:
        session = dict(scope.get("headers", ())).get(b"mcp-session-id")
        if session in self.forgotten:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Session not found"})
            return
        if session is not None:
            self.seen.add(session)
        await self.app(scope, receive, send)


async def test_an_upstream_that_forgot_the_session_is_reconnected(sqlite_world, subprocess_env):
    world = sqlite_world
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:tracker.echo")
    upstream = Forgetful(legacy_only(tracker().streamable_http_app()))
    with LoopbackServer(upstream, lifespan="on") as base:
        register(world, subprocess_env, "tracker", "--url", f"{base}/mcp")
        with serve(world) as live:
            async with connect(live.mcp_url, world.token("alice")) as alice:
                assert text_of(await alice.call_tool("tracker.echo", {"text": "hi"})) == "echo: hi"
                upstream.forget()
                lost = await alice.call_tool("tracker.echo", {"text": "hi"})
                assert (lost.is_error, text_of(lost)) == (True, 'the upstream "tracker" cannot be reached right now; try again later')

                async def answers() -> bool:
                    return not (await alice.call_tool("tracker.echo", {"text": "back"})).is_error

                # The gateway opened a new session, without a restart of its own.
                with anyio.fail_after(30):
                    while not await answers():
                        await anyio.sleep(0.2)


async def test_an_upstream_that_hangs_from_the_start_does_not_hold_the_gateway(sqlite_world, subprocess_env):
    """It accepts connections and never answers: the handshake gives up and the gateway serves the rest."""
    world = sqlite_world
    done = threading.Event()

    async def silent(scope, receive, send) -> None:
        while scope["type"] == "http" and not done.is_set():
            await anyio.sleep(0.05)

    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:silent.*")
    with LoopbackServer(silent) as base:
        register(world, subprocess_env, "silent", "--url", f"{base}/mcp", "--timeout", "1", "--no-connect")
        gateway = world.gateway()
        try:
            with serve(world, gateway) as live:
                async with connect(live.mcp_url, world.token("alice")) as alice:
                    assert await tool_names(alice, "silent.") == set()
                    why = gateway.upstreams.connections["silent"].last_error
                    assert "timed out" in why or why == "it did not answer in time", why
                    unknown = await alice.call_tool("silent.anything", {})
                    assert unknown.is_error and text_of(unknown).startswith("No tool named silent.anything")
                    assert not (await alice.call_tool("files.list", {"path": "reports"})).is_error
        finally:
            done.set()
