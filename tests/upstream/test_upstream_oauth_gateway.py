"""OAuth towards an upstream through the real gateway, end to end: callers with real tokens from the
gateway's issuer, the upstream registered with the CLI, a loopback authorization server (client
credentials and RFC 8693 token exchange), and an SDK upstream that verifies what it is sent and says
whom it sees."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from mcp.shared.exceptions import MCPError

from gateway.harness import World, cli, connect, serve, sqlite_world, text_of  # noqa: F401 (fixture)
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.store import PolicyAdmin
from tests.upstream.oauth_support import Issuer, serving
from tests.upstream.test_upstream_oauth import door, vault  # noqa: F401 (fixtures: the vault uses this module's issuer)

SECRET = "gateway-secret"


def subject_checker(world: World):
    """How the authorization server trusts the gateway's issuer: the token's signature, then its `sub`."""

    def subject_of(token: str) -> str | None:
        try:
            # Read when asked: the keys are made when the first token is minted.
            return jwt.decode(token, KeySet.import_key_set(SigningKeys(world.engine).jwks())).claims.get("sub")
        except (JoseError, ValueError):
            return None

    return subject_of


@pytest.fixture
def issuer(sqlite_world) -> Iterator[Issuer]:
    state = Issuer(clients={"gateway": SECRET}, subject_of=subject_checker(sqlite_world))
    with serving(state.app):
        yield state


@pytest.fixture
def exchanging(sqlite_world, subprocess_env, issuer, door, vault, monkeypatch) -> World:
    """The vault registered with token exchange (the secret by reference) and granted to both roles."""
    monkeypatch.setenv("TEST_VAULT_SECRET", SECRET)
    # The add connects once (the probe), so it needs the secret as the gateway will.
    done = cli(
        {**subprocess_env, "TEST_VAULT_SECRET": SECRET}, "upstream", "add", "vault", "--url", vault, "--timeout", "5", "--oauth-client-id", "gateway",
        "--oauth-client-secret", "env:TEST_VAULT_SECRET", "--oauth-token-url", f"{issuer.url}/token",
        "--oauth-token-exchange", "--database", sqlite_world.database_url,
    )
    assert done.returncode == 0, done.stderr
    # The add's probe got and presented its own token; the gateway's are counted from here.
    issuer.requests.clear()
    door.presented.clear()
    admin = PolicyAdmin(sqlite_world.engine)
    for principal in ("role:analyst", "role:intern"):
        admin.add_grant(principal, "tool:vault.whoami")
    return sqlite_world


async def test_each_caller_reaches_the_upstream_as_itself_and_its_token_never_does(exchanging, issuer, door, vault, caplog):
    caplog.set_level(logging.DEBUG)
    world = exchanging
    alice_token, bob_token = world.token("alice"), world.token("bob")
    with serve(world) as live:
        async with connect(live.mcp_url, alice_token) as alice, connect(live.mcp_url, bob_token) as bob:
            for _ in range(3):
                assert text_of(await alice.call_tool("vault.whoami", {})) == "alice via gateway acting gateway"
            assert text_of(await bob.call_tool("vault.whoami", {})) == "bob via gateway acting gateway"
    exchanges = issuer.token_requests()
    # The tools were listed with the gateway's own token; each caller's token was exchanged once, for the upstream.
    assert [(r["grant_type"], r.get("subject")) for r in exchanges] == [
        ("client_credentials", None),
        ("urn:ietf:params:oauth:grant-type:token-exchange", "alice"),
        ("urn:ietf:params:oauth:grant-type:token-exchange", "bob"),
    ]
    assert {r["resource"] for r in exchanges} == {vault}
    # Three tokens reached the upstream (the gateway's, alice's and bob's exchanged ones); no caller's own token did.
    assert len(set(door.presented)) == 3
    assert alice_token not in door.presented and bob_token not in door.presented
    # No token and no secret in the gateway's log, at any level (which did log the upstream).
    assert "upstream vault: 1 tool, 1 resource, 0 templates, 1 prompt" in caplog.text
    for value in (alice_token, bob_token, *door.presented, SECRET):
        assert value not in caplog.text


async def test_a_refused_exchange_is_a_sentence_and_never_an_allow(exchanging, issuer, door):
    world = exchanging
    issuer.subject_of = lambda token: None
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            refused = await alice.call_tool("vault.whoami", {})
            assert refused.is_error
            assert text_of(refused) == (
                'the upstream "vault" cannot be used right now: the gateway could not get a token for it from its '
                "authorization server; try again later, and tell an administrator if this persists"
            )
            # Tools were listed with the gateway's own token; the upstream never ran whoami for alice.
            assert [r["answer"] for r in issuer.requests] == ["token", "invalid_grant"]
    assert [r.outcome for r in world.audit_rows(target="tool:vault.whoami") if r.outcome] == ["error"]


async def test_reads_and_prompt_gets_go_as_the_caller_too(exchanging, issuer, door):
    world = exchanging
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:analyst", "resource:upstream://vault/*")
    admin.add_grant("role:analyst", "prompt:vault.me")
    alice_token = world.token("alice")
    with serve(world) as live:
        async with connect(live.mcp_url, alice_token) as alice:
            read = await alice.read_resource("upstream://vault/vault://me")
            assert [(c.uri, c.text) for c in read.contents] == [("upstream://vault/vault://me", "alice via gateway acting gateway")]
            got = await alice.get_prompt("vault.me")
            assert [m.content.text for m in got.messages] == ["alice via gateway acting gateway"]
    # Listed with the gateway's own token; alice's exchanged once, for her session, read and get alike.
    assert [(r["grant_type"], r.get("subject")) for r in issuer.token_requests()] == [
        ("client_credentials", None), ("urn:ietf:params:oauth:grant-type:token-exchange", "alice"),
    ]
    assert alice_token not in door.presented


async def test_a_refused_exchange_refuses_a_read_and_a_get_with_the_same_sentence(exchanging, issuer, door):
    world = exchanging
    admin = PolicyAdmin(world.engine)
    admin.add_grant("role:analyst", "resource:upstream://vault/*")
    admin.add_grant("role:analyst", "prompt:vault.me")
    issuer.subject_of = lambda token: None
    sentence = (
        'the upstream "vault" cannot be used right now: the gateway could not get a token for it from its '
        "authorization server; try again later, and tell an administrator if this persists"
    )
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            for request in (alice.read_resource("upstream://vault/vault://me"), alice.get_prompt("vault.me")):
                with pytest.raises(MCPError) as caught:
                    await request
                assert caught.value.error.message == sentence
    assert [r.outcome for r in world.audit_rows(target="resource:upstream://vault/vault://me") if r.outcome] == ["error"]
    assert [r.outcome for r in world.audit_rows(target="prompt:vault.me") if r.outcome] == ["error"]


async def test_client_credentials_found_by_discovery_and_a_token_endpoint_that_goes_down(
    sqlite_world, subprocess_env, issuer, door, vault, monkeypatch,
):
    world = sqlite_world
    monkeypatch.setenv("TEST_VAULT_SECRET", SECRET)
    # The add connects once (the probe), so it needs the secret as the gateway will.
    done = cli(
        {**subprocess_env, "TEST_VAULT_SECRET": SECRET}, "upstream", "add", "vault", "--url", vault, "--timeout", "5", "--oauth-client-id", "gateway",
        "--oauth-client-secret", "env:TEST_VAULT_SECRET", "--database", world.database_url,
    )
    assert done.returncode == 0, done.stderr
    issuer.requests.clear()  # the add's probe asked for its own token; the gateway's are counted from here
    PolicyAdmin(world.engine).add_grant("role:analyst", "tool:vault.whoami")
    gateway = world.gateway()
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            # The gateway calls as itself: the upstream sees its client, not alice.
            for _ in range(3):
                assert text_of(await alice.call_tool("vault.whoami", {})) == "gateway via gateway"
            assert len(issuer.token_requests()) == 1
            # The token is about to lapse and the authorization server is down: a sentence, not a call.
            issuer.down = True
            source = gateway.upstreams.connections["vault"].auth.source
            real_clock = source.clock
            source.clock = lambda: real_clock() + issuer.lifetime
            seen = len(door.presented)
            refused = await alice.call_tool("vault.whoami", {})
            assert refused.is_error and "could not get a token for it from its authorization server" in text_of(refused)
            assert len(door.presented) == seen  # nothing was sent to the upstream
            issuer.down = False
            assert text_of(await alice.call_tool("vault.whoami", {})) == "gateway via gateway"
    assert [r.outcome for r in world.audit_rows(target="tool:vault.whoami") if r.outcome] == ["ok"] * 3 + ["error", "ok"]


async def test_over_stdio_the_token_the_process_started_with_is_exchanged(exchanging, subprocess_env, issuer, door):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    world = exchanging
    token = world.token("bob")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_acl", "stdio", "--database", world.database_url],
        env={**subprocess_env, "MCP_ACL_TOKEN": token, "TEST_VAULT_SECRET": SECRET},
    )
    async with Client(params, mode="legacy") as bob:
        assert text_of(await bob.call_tool("vault.whoami", {})) == "bob via gateway acting gateway"
    assert [r.get("subject") for r in issuer.token_requests()] == [None, "bob"]
    assert token not in door.presented
