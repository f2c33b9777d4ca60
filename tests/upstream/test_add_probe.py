"""`upstream add` connects once, pins the tools and prompts it finds, and refuses (one line, exit 2, nothing written) what is not an MCP server."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import anyio
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from auth.support import LoopbackServer  # tests/auth/support.py
from gateway.harness import cli, sqlite_world  # noqa: F401 (fixture)
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.pins import Pins, add_pinned, pin_first_use
from mcp_acl.store.upstreams import Upstream, add_upstream
from tests.upstream.upstream_server import tracker
from tests.upstream.test_gateway_upstreams import SERVER_SCRIPT, _closed_port, http_upstream, seen  # noqa: F401 (fixtures)

# What the test upstream offers, asked of it (other tests add tools to it).
TRACKER_TOOLS = {tool.name for tool in anyio.run(tracker().list_tools)}
TRACKER_PROMPTS = {prompt.name for prompt in anyio.run(tracker().list_prompts)}


def stored(world) -> dict:
    """The upstream rows, the pins and the revision: what "nothing written" is checked against."""
    with world.engine.connect() as conn:
        return {
            "upstreams": sorted((r.name, r.pinned_at is not None) for r in conn.execute(select(t.upstreams))),
            "pins": sorted((r.upstream, r.tool) for r in conn.execute(select(t.upstream_tools))),
            "prompt_pins": sorted((r.upstream, r.prompt) for r in conn.execute(select(t.upstream_prompts))),
            "revision": PolicyAdmin(world.engine).revision(),
        }


def add(world, env, *args: str):
    return cli(env, "upstream", "add", *args, "--database", world.database_url)


def test_adding_an_http_upstream_connects_and_pins_its_tools_and_prompts(sqlite_world, subprocess_env, http_upstream):
    world = sqlite_world
    done = add(world, subprocess_env, "tracker", "--url", http_upstream, "--timeout", "5")
    assert done.returncode == 0, done.stderr
    assert f"found {len(TRACKER_TOOLS)} tools and {len(TRACKER_PROMPTS)} prompts and pinned their definitions" in done.stdout
    assert "upstream://tracker/*" in done.stdout
    assert stored(world)["upstreams"] == [("tracker", True)]
    assert {tool for _, tool in stored(world)["pins"]} == TRACKER_TOOLS
    assert {prompt for _, prompt in stored(world)["prompt_pins"]} == TRACKER_PROMPTS
    with world.engine.connect() as conn:
        assert "first use" not in {r.pinned_by for r in conn.execute(select(t.upstream_tools.c.pinned_by))}
        assert "first use" not in {r.pinned_by for r in conn.execute(select(t.upstream_prompts.c.pinned_by))}


def test_adding_a_stdio_upstream_connects_and_pins_its_tools_and_prompts(sqlite_world, subprocess_env):
    world = sqlite_world
    done = add(world, subprocess_env, "local", "--command", f"{sys.executable} {SERVER_SCRIPT}")
    assert done.returncode == 0, done.stderr
    assert f"found {len(TRACKER_TOOLS)} tools and {len(TRACKER_PROMPTS)} prompts" in done.stdout
    assert {tool for _, tool in stored(world)["pins"]} == TRACKER_TOOLS
    assert {prompt for _, prompt in stored(world)["prompt_pins"]} == TRACKER_PROMPTS


@pytest.fixture
def web_page() -> Iterator[str]:
    """An HTTP server that is not MCP: HTML at /page, 404 with HTML anywhere else."""

    async def page(request):
        return HTMLResponse("<html><body>hello</body></html>", status_code=200 if request.url.path == "/page" else 404)

    app = Starlette(routes=[Route("/{path:path}", page, methods=["GET", "POST", "DELETE"])])
    with LoopbackServer(app) as base:
        yield base


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_what_cannot_be_added_is_one_line_exit_2_and_nothing_written(sqlite_world, subprocess_env, web_page, silent_port):
    world = sqlite_world
    before = stored(world)
    cases = [
        (("web", "--url", f"{web_page}/mcp"), "Not Found"),
        (("web", "--url", f"{web_page}/page"), "text/html"),
        (("gone", "--command", f"{sys.executable} -c pass"), "the command ended before it answered"),
        (("boom", "--command", f"{sys.executable} -c \"import sys; sys.exit('no config file')\""), "its last words: no config file"),
        (("missing", "--command", "/nonexistent/server"), "No such file"),
        (("down", "--url", f"http://127.0.0.1:{_closed_port()}/mcp"), "ConnectError"),
        (("slow", "--url", f"http://127.0.0.1:{silent_port}/mcp", "--timeout", "1"), "did not answer within 1 s"),
        (("tracker", "--url", f"{web_page}/mcp", "--header", "Authorization=Bearer abc"), "must be a reference"),
        (("files", "--url", f"{web_page}/mcp"), "collides with the built-in tools files"),
        (("sql", "--command", f"{sys.executable} {SERVER_SCRIPT}"), "collides with the built-in tools sql"),
    ]
    for args, says in cases:
        done = add(world, subprocess_env, *args)
        assert done.returncode == 2 and done.stdout == "", (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert stored(world) == before


def test_the_probe_says_how_to_register_an_unreachable_upstream_and_no_connect_does(sqlite_world, subprocess_env):
    world = sqlite_world
    url = f"http://127.0.0.1:{_closed_port()}/mcp"
    refused = add(world, subprocess_env, "later", "--url", url)
    assert refused.returncode == 2 and "--no-connect" in refused.stderr
    done = add(world, subprocess_env, "later", "--url", url, "--no-connect")
    assert done.returncode == 0, done.stderr
    assert "without connecting" in done.stdout and "pinned when a gateway first reads them" in done.stdout
    assert stored(world)["upstreams"] == [("later", False)] and stored(world)["pins"] == []


def test_a_name_given_twice_is_refused_before_connecting(sqlite_world, subprocess_env, http_upstream):
    world = sqlite_world
    assert add(world, subprocess_env, "tracker", "--url", http_upstream).returncode == 0
    before = stored(world)
    again = add(world, subprocess_env, "tracker", "--url", f"http://127.0.0.1:{_closed_port()}/mcp")
    assert again.returncode == 2 and "already exists" in again.stderr and again.stderr.strip().count("\n") == 0
    assert stored(world) == before


@pytest.mark.parametrize("command", ["show", "remove", "approve", "refresh"])
def test_an_unknown_upstream_name_is_one_line_exit_2(sqlite_world, subprocess_env, command):
    world = sqlite_world
    before = stored(world)
    extra = ["--yes"] if command == "approve" else []
    done = cli(subprocess_env, "upstream", command, "nosuch", *extra, "--database", world.database_url)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().count("\n") == 0 and "upstream 'nosuch' does not exist" in done.stderr
    assert stored(world) == before


def test_an_upstream_recorded_with_no_tools_has_its_later_tools_and_prompts_withheld(sqlite_world):
    """Recorded empty at add time is not "never pinned": a tool or prompt that appears later is new, so it waits for approval."""
    world = sqlite_world
    add_pinned(PolicyAdmin(world.engine), Upstream("empty", "http", url="http://127.0.0.1:9/mcp"), Pins())
    later = Pins(tools={"leak": {"name": "leak", "description": "appeared later"}}, prompts={"steer": {"name": "steer", "arguments": []}})
    assert pin_first_use(world.engine, "empty", later) == Pins()
    # Not recorded (added with --no-connect): the first read pins, as before.
    add_upstream(PolicyAdmin(world.engine), Upstream("fresh", "http", url="http://127.0.0.1:9/mcp"))
    assert pin_first_use(world.engine, "fresh", later) == later
    assert stored(world)["upstreams"] == [("empty", True), ("fresh", True)]
