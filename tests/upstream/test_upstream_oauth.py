"""OAuth client credentials towards an upstream: a real loopback authorization server issuing signed tokens,
an SDK upstream that verifies them, and the gateway's own upstream pool and forwarding in between."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import asynccontextmanager

import anyio
import pytest

from mcp_acl.gateway.catalogue import Catalogue
from mcp_acl.gateway.specs import CallContext, ToolError
from mcp_acl.policy import Identity
from mcp_acl.store.upstreams import Upstream, UpstreamOAuth
from mcp_acl.upstream import UpstreamPool
from tests.upstream.oauth_support import Door, Issuer, protected_upstream, serving

SECRET = "gateway-secret"
ALICE = CallContext(Identity("alice", "agent"))


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer(clients={"gateway": SECRET})
    with serving(state.app):
        yield state


@pytest.fixture
def door() -> Door:
    return Door()


@pytest.fixture
def vault(issuer, door) -> Iterator[str]:
    """The protected upstream's /mcp URL."""
    with serving(protected_upstream(issuer, door)) as base:
        yield f"{base}/mcp"


@pytest.fixture
def secret_env(monkeypatch) -> str:
    monkeypatch.setenv("TEST_VAULT_SECRET", SECRET)
    return "env:TEST_VAULT_SECRET"


def vault_upstream(url: str, **oauth) -> Upstream:
    settings = {"client_id": "gateway", "client_secret": "env:TEST_VAULT_SECRET"} | oauth
    return Upstream(name="vault", transport="http", url=url, timeout_seconds=5, oauth=UpstreamOAuth(**settings))


@asynccontextmanager
async def running(up: Upstream):
    """The pool serving `up`, its catalogue filled: (pool, catalogue)."""
    pool, catalogue = UpstreamPool([up]), Catalogue()
    async with anyio.create_task_group() as tg:
        await tg.start(pool.run, catalogue)
        try:
            yield pool, catalogue
        finally:
            tg.cancel_scope.cancel()


async def call(catalogue: Catalogue, name: str = "vault.whoami", ctx: CallContext = ALICE) -> str:
    result = await catalogue.tools[name].handler({}, ctx)
    assert not result.is_error, result
    return result.content[0].text


async def test_one_token_serves_many_calls_and_the_upstream_sees_the_gateway(issuer, door, vault, secret_env):
    up = vault_upstream(vault, token_url=f"{issuer.url}/token", scope="vault.read")
    async with running(up) as (pool, catalogue):
        assert "vault.whoami" in catalogue.tools
        for _ in range(5):
            assert await call(catalogue) == "gateway via gateway"
    # One token request for the handshake, the listing and five calls; asked for the upstream as resource, with the scope.
    assert issuer.token_requests() == [{
        "grant_type": "client_credentials", "client": "gateway", "resource": vault, "audience": None,
        "scope": "vault.read", "answer": "token",
    }]
    assert len(set(door.presented)) == 1


async def test_the_token_endpoint_is_discovered_from_the_upstream(issuer, door, vault, secret_env):
    async with running(vault_upstream(vault)) as (pool, catalogue):
        assert await call(catalogue) == "gateway via gateway"
        assert pool.connections["vault"].auth.source.token_url == f"{issuer.url}/token"


async def test_a_token_is_renewed_before_it_expires(issuer, door, vault, secret_env):
    async with running(vault_upstream(vault, token_url=f"{issuer.url}/token")) as (pool, catalogue):
        source = pool.connections["vault"].auth.source
        await call(catalogue)
        first = door.presented[-1]
        # Within the last minute of its hour: renewed before the next call is sent.
        real_clock = source.clock
        source.clock = lambda: real_clock() + issuer.lifetime - 30
        await call(catalogue)
        assert door.presented[-1] != first
        assert len(issuer.token_requests()) == 2


async def test_a_refused_token_is_renewed_once_and_the_call_retried(issuer, door, vault, secret_env):
    async with running(vault_upstream(vault, token_url=f"{issuer.url}/token")) as (pool, catalogue):
        await call(catalogue)
        door.revoked.add(door.presented[-1])
        # The upstream answers 401; the gateway gets a new token and the same call goes through.
        assert await call(catalogue) == "gateway via gateway"
        assert len(issuer.token_requests()) == 2
        # An upstream that refuses every token: one sentence, after one renewal, and never an allow.
        door.refuse_all = True
        before = len(issuer.token_requests())
        with pytest.raises(ToolError, match="did not accept the gateway's token"):
            await catalogue.tools["vault.whoami"].handler({}, ALICE)
        assert len(issuer.token_requests()) == before + 1


async def test_a_token_endpoint_that_is_down_gives_a_sentence(issuer, door, vault, secret_env):
    async with running(vault_upstream(vault, token_url=f"{issuer.url}/token")) as (pool, catalogue):
        await call(catalogue)
        issuer.down = True
        source = pool.connections["vault"].auth.source
        real_clock = source.clock
        source.clock = lambda: real_clock() + issuer.lifetime
        with pytest.raises(ToolError) as refused:
            await catalogue.tools["vault.whoami"].handler({}, ALICE)
        assert str(refused.value) == (
            'the upstream "vault" cannot be used right now: the gateway could not get a token for it from its '
            "authorization server; try again later, and tell an administrator if this persists"
        )
        issuer.down = False
        assert await call(catalogue) == "gateway via gateway"


async def test_a_wrong_secret_or_a_missing_one_keeps_the_upstream_down(issuer, door, vault, monkeypatch, caplog):
    monkeypatch.setenv("TEST_VAULT_SECRET", "not-the-secret")
    async with running(vault_upstream(vault, token_url=f"{issuer.url}/token")) as (pool, catalogue):
        assert "vault.whoami" not in catalogue.tools
        why = pool.connections["vault"].last_error
        assert "refused the token request of client 'gateway' (invalid_client" in why and "not-the-secret" not in why
    monkeypatch.delenv("TEST_VAULT_SECRET")
    async with running(vault_upstream(vault, token_url=f"{issuer.url}/token")) as (pool, catalogue):
        assert "the environment variable TEST_VAULT_SECRET is not set" in pool.connections["vault"].last_error
    assert door.presented == []
    assert "not-the-secret" not in caplog.text


async def test_per_caller_sessions_are_bounded_and_closed_when_idle(issuer, door, vault, secret_env):
    from mcp_acl.auth import caller_token

    # This authorization server takes the subject token's text as the caller's name (the real check is in
    # test_upstream_token_exchange.py); what is tested here is the gateway's pool of caller sessions.
    issuer.subject_of = lambda token: token.removeprefix("token-of-")
    up = vault_upstream(vault, token_url=f"{issuer.url}/token", token_exchange=True)

    async def call_as(name: str) -> str:
        held = caller_token.bind(caller_token.CallerToken(f"token-of-{name}", expires_at=time.time() + 3600))
        try:
            return await call(catalogue, ctx=CallContext(Identity(name, "agent")))
        finally:
            caller_token.unbind(held)

    async with running(up) as (pool, catalogue):
        callers = pool.connections["vault"].callers
        callers.limit = 1
        assert await call_as("alice") == "alice via gateway acting gateway"
        # Full, and alice's session may still be in use: bob is told to try again shortly.
        with pytest.raises(ToolError, match='the upstream "vault" is serving 1 other callers right now'):
            await call_as("bob")
        real_clock = callers.clock
        callers.clock = lambda: real_clock() + callers.idle_seconds + 1
        # alice's session is old enough to make room for bob's.
        assert await call_as("bob") == "bob via gateway acting gateway"
        assert len(callers) == 1
        callers.clock = lambda: real_clock() + 2 * (callers.idle_seconds + 1)
        callers.close_idle()
        assert len(callers) == 0
        # Without a caller token there is nothing to exchange: a sentence, and the gateway's own token is not used instead.
        with pytest.raises(ToolError, match="brings no token to exchange"):
            await call(catalogue)
    assert [r.get("subject") for r in issuer.token_requests()] == [None, "alice", "bob"]


async def test_discovery_refuses_a_metadata_document_about_another_resource_or_a_plain_http_server(issuer, secret_env):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def upstream_naming(resource: str, server: str):
        def make(base: str):
            async def metadata(request):
                return JSONResponse({"resource": resource.replace("{base}", base), "authorization_servers": [server]})

            return Starlette(routes=[Route("/.well-known/oauth-protected-resource/mcp", metadata)])

        return make

    for resource, server, says in (
        ("https://elsewhere.example/mcp", issuer.url, "its protected-resource metadata is about 'https://elsewhere.example/mcp'"),
        ("{base}/mcp", "http://as.example", "its authorization server 'http://as.example' is not an https URL"),
    ):
        with serving(upstream_naming(resource, server)) as base:
            async with running(vault_upstream(f"{base}/mcp")) as (pool, catalogue):
                assert says in pool.connections["vault"].last_error
    assert issuer.requests == []
