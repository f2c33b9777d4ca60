"""An upstream's resources, resource templates and prompts, governed like the built-in ones: an SDK-made
upstream on loopback HTTP, registered with the CLI, served by the real gateway, used by the SDK's real client."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from mcp.shared.exceptions import MCPError

from auth.support import LoopbackServer  # tests/auth/support.py
from gateway.harness import cli, connect, get_stream_open, serve, sqlite_world, wait_for  # noqa: F401 (fixture)
from gateway.test_notifier import _recorder, _session_of
from mcp_acl.policy import Effect
from mcp_acl.store import PolicyAdmin
from tests.upstream.test_gateway_upstreams import register
from tests.upstream.upstream_server import PNG, tracker

NOTES = "upstream://tracker/note://"


@pytest.fixture
def upstream() -> Iterator[LoopbackServer]:
    """The tracker upstream over Streamable HTTP on loopback (its MCPServer as `.mcp`); the test may stop it early."""
    mcp = tracker()
    server = LoopbackServer(mcp.streamable_http_app(), lifespan="on")
    server.mcp = mcp
    server.url = f"{server.__enter__()}/mcp"
    yield server
    server.__exit__(None, None, None)


def stop(server: LoopbackServer) -> None:
    """Stop the upstream now, open connections and all (an upstream that goes down)."""
    server.server.force_exit = True
    server.__exit__(None, None, None)


async def uris(client, prefix: str = "upstream://") -> set[str]:
    return {r.uri for r in (await client.list_resources()).resources if r.uri.startswith(prefix)}


async def templates(client) -> set[str]:
    return {t.uri_template for t in (await client.list_resource_templates()).resource_templates if t.uri_template.startswith("upstream://")}


async def prompts(client) -> dict[str, list[str]]:
    return {p.name: [a.name for a in p.arguments or ()] for p in (await client.list_prompts()).prompts if p.name.startswith("tracker.")}


async def refusal(request) -> str:
    with pytest.raises(MCPError) as caught:
        await request
    return caught.value.error.message


def grant_documents(admin: PolicyAdmin) -> None:
    """alice (analyst): the notes but the secret, the PNG, the slow one, two prompts; bob (intern): one prompt."""
    admin.add_grant("role:analyst", f"resource:{NOTES}*")
    admin.add_grant("role:analyst", f"resource:{NOTES}secret", Effect.DENY)
    admin.add_grant("role:analyst", "resource:upstream://tracker/blob://*")
    admin.add_grant("role:analyst", "resource:upstream://tracker/slow://*")
    admin.add_grant("role:analyst", "prompt:tracker.review", condition='args.topic.startsWith("q")')
    admin.add_grant("role:analyst", "prompt:tracker.broken")
    admin.add_grant("role:intern", "prompt:tracker.plan")


async def test_an_upstreams_resources_templates_and_prompts_are_governed(sqlite_world, subprocess_env, upstream):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream.url, "--timeout", "2")
    grant_documents(PolicyAdmin(world.engine))
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("bob")) as bob:
            # Each identity sees its slice, under URIs that name the upstream.
            assert await uris(alice) == {f"{NOTES}alpha", "upstream://tracker/blob://dot", "upstream://tracker/slow://forever"}
            assert await templates(alice) == {f"{NOTES}{{id}}"}
            assert await prompts(alice) == {"tracker.review": ["topic"], "tracker.broken": []}
            assert (await uris(bob), await templates(bob), await prompts(bob)) == (set(), set(), {"tracker.plan": []})

            # A listed resource: forwarded with the upstream's own URI, the contents under the gateway's.
            read = await alice.read_resource(f"{NOTES}alpha")
            assert [(c.uri, c.text) for c in read.contents] == [(f"{NOTES}alpha", "alpha text")]
            # A URI that matches the upstream's template is decided and forwarded.
            read = await alice.read_resource(f"{NOTES}x7")
            assert [(c.uri, c.text) for c in read.contents] == [(f"{NOTES}x7", "note x7")]
            # Bytes pass through untouched.
            blob = (await alice.read_resource("upstream://tracker/blob://dot")).contents[0]
            assert (base64.b64decode(blob.blob), blob.mime_type) == (PNG, "image/png")
            # Denied, not granted, not offered: refused, and nothing says which of them it was.
            for who, uri in ((alice, f"{NOTES}secret"), (bob, f"{NOTES}alpha"), (alice, "upstream://other/note://alpha")):
                assert await refusal(who.read_resource(uri)) == f"Unknown resource: {uri}"
            # The upstream's own error, and a slow upstream: one sentence each.
            assert (await refusal(alice.read_resource(f"{NOTES}missing"))).startswith('the upstream "tracker" refused the request:')
            assert await refusal(alice.read_resource("upstream://tracker/slow://forever")) == (
                'the upstream "tracker" did not answer within 2 s; try again later'
            )

            # Prompts: forwarded with their arguments; an argument condition decides as for tools.
            got = await alice.get_prompt("tracker.review", {"topic": "q3"})
            assert [m.content.text for m in got.messages] == ["Please review q3."]
            assert (await refusal(alice.get_prompt("tracker.review", {"topic": "prod"}))).startswith("Refused:")
            assert await refusal(bob.get_prompt("tracker.review", {"topic": "q3"})) == "Unknown prompt: tracker.review"
            assert (await bob.get_prompt("tracker.plan")).messages[0].content.text == "Plan the day."
            assert (await refusal(alice.get_prompt("tracker.broken"))).startswith('the upstream "tracker" refused the request:')
            # The same on the sessionless 2026-07-28 protocol.
            async with connect(live.mcp_url, world.token("alice"), mode="auto") as modern:
                assert await uris(modern) == await uris(alice)
                assert (await modern.read_resource(f"{NOTES}x8")).contents[0].text == "note x8"
                assert (await modern.get_prompt("tracker.review", {"topic": "q4"})).messages[0].content.text == "Please review q4."

            # The upstream goes down: one sentence, never anything else read in its place.
            stop(upstream)
            down = 'the upstream "tracker" cannot be reached right now; try again later'
            assert await refusal(alice.read_resource(f"{NOTES}alpha")) == down
            assert await refusal(alice.get_prompt("tracker.review", {"topic": "q4"})) == down

    # Every read and get was decided and audited, its outcome too.
    alpha = world.audit_rows(target=f"resource:{NOTES}alpha", action="resources/read")
    assert [(r.subject, r.decision) for r in alpha if r.decision] == [("alice", "allow"), ("bob", "deny"), ("alice", "allow")]
    assert [r.outcome for r in alpha if r.outcome] == ["ok", "error"]
    assert [r.decision for r in world.audit_rows(target=f"resource:{NOTES}x7") if r.decision] == ["allow"]
    review = world.audit_rows(target="prompt:tracker.review", action="prompts/get")
    assert [(r.subject, r.decision) for r in review if r.decision] == [("alice", "allow"), ("alice", "deny"), ("bob", "deny")] + [("alice", "allow")] * 2
    assert [r.outcome for r in review if r.outcome] == ["ok", "ok", "error"]
    assert [r.outcome for r in world.audit_rows(target="prompt:tracker.broken") if r.outcome] == ["error"]


def test_catalogue_check_and_policy_test_know_them(sqlite_world, subprocess_env, upstream, tmp_path):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream.url)
    grant_documents(PolicyAdmin(world.engine))
    database = ("--database", world.database_url)
    shown = cli(subprocess_env, "catalogue", "--user", "alice", "--json", *database)
    assert shown.returncode == 0, shown.stderr
    listing = json.loads(shown.stdout)
    assert {u for u in listing["resources"] if u.startswith("upstream://")} == {
        f"{NOTES}alpha", "upstream://tracker/blob://dot", "upstream://tracker/slow://forever"
    }
    assert listing["resource_templates"] == [f"{NOTES}{{id}}"]
    assert {"tracker.review", "tracker.broken"} <= set(listing["prompts"]) and "tracker.plan" not in listing["prompts"]
    bob = json.loads(cli(subprocess_env, "catalogue", "--user", "bob", "--json", *database).stdout)
    assert not [u for u in bob["resources"] if u.startswith("upstream://")] and "tracker.plan" in bob["prompts"]

    def check(*args: str) -> int:
        return cli(subprocess_env, "check", *args, *database).returncode

    assert check("user:alice", f"resource:{NOTES}alpha") == 0
    assert check("user:alice", f"resource:{NOTES}secret") == 1
    assert check("user:alice", "prompt:tracker.review", "--args", '{"topic": "q3"}') == 0
    assert check("user:alice", "prompt:tracker.review", "--args", '{"topic": "prod"}') == 1
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n"
        f"  - {{principal: user:alice, target: 'resource:{NOTES}x7', expect: allow}}\n"
        f"  - {{principal: user:bob, target: 'resource:{NOTES}x7', expect: deny}}\n"
        "  - {principal: user:bob, target: prompt:tracker.plan, expect: allow}\n"
        "  - {principal: user:alice, target: prompt:tracker.review, args: {topic: prod}, expect: deny}\n"
    )
    tested = cli(subprocess_env, "policy", "test", str(cases), *database)
    assert tested.returncode == 0, tested.stdout + tested.stderr


async def test_a_refresh_brings_new_resources_and_tells_the_sessions_that_see_them(sqlite_world, subprocess_env, upstream):
    world = sqlite_world
    register(world, subprocess_env, "tracker", "--url", upstream.url)
    grant_documents(PolicyAdmin(world.engine))
    heard: list[str] = []
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), message_handler=_recorder(heard)) as alice:
            assert f"{NOTES}beta" not in await uris(alice)
            await get_stream_open(live, _session_of(world, "alice"))

            @upstream.mcp.resource("note://beta", name="beta", description="The beta note.")
            def beta() -> str:
                return "beta text"

            done = cli(subprocess_env, "upstream", "refresh", "tracker", "--database", world.database_url)
            assert done.returncode == 0, done.stderr
            await wait_for(lambda: heard)
            assert heard == ["notifications/resources/list_changed"]
            assert f"{NOTES}beta" in await uris(alice)
            assert (await alice.read_resource(f"{NOTES}beta")).contents[0].text == "beta text"
