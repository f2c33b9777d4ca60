"""Fixtures: the real app with `/ollama` on, over the demo seed, forwarding to the scripted Ollama.

The app is `create_app(..., ollama=EndpointSettings(...))` under uvicorn on
loopback; its upstream is the Ollama double (tests/support), which speaks
Ollama's HTTP API; the "app" in each test is the real `ollama` client
pointed at `/ollama`. A front-end client `open-webui` is registered,
restricted, and trusted to name its user in `X-OpenWebUI-User-Email`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import ollama
import pytest

from mcp_acl.app import create_app
from mcp_acl.auth.keys import SigningKeys
from mcp_acl.auth.tokens import mint_access_token
from mcp_acl.demo import POLICY_PROMPT
from mcp_acl.ollama_endpoint import EndpointSettings
from mcp_acl.store import PolicyAdmin
from tests.auth.support import LoopbackServer
from tests.support.demo_gateway import Demo, demo, sqlite_demo  # noqa: F401
from tests.support.ollama_double import OllamaDouble

FRONT_END = "open-webui"
USER_HEADER = "X-OpenWebUI-User-Email"


@dataclass
class Endpoint:
    """The served app: its base URL, the demo world, and the double behind it."""

    base: str
    world: Demo
    double: OllamaDouble

    @property
    def url(self) -> str:
        """What an app sets OLLAMA_HOST to."""
        return self.base + "/ollama"

    def app(self, token: str | None, **headers: str) -> ollama.AsyncClient:
        """The real `ollama` client as an app would run it, with this bearer token (None: none)."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return ollama.AsyncClient(host=self.url, headers=headers)

    def user_token(self, user: str, client: str = "ollama-agent") -> str:
        """A user's token through `client`."""
        return self.world.token(user, client)

    def front_end_token(self) -> str:
        """The front-end's own token: a service token (sub = client id, no user)."""
        w = self.world
        return mint_access_token(
            SigningKeys(w.engine), issuer=w.settings.embedded_issuer_url, audience=w.settings.resource_url,
            subject=None, client_id=FRONT_END, scopes=("mcp",), ttl=timedelta(hours=1))


def add_front_end(world: Demo) -> None:
    """Register the front-end as a restricted client that may use the files tools and the policy prompt."""
    admin = PolicyAdmin(world.engine, actor="test")
    admin.add_client(FRONT_END, restricted=True, name="Open WebUI")
    admin.add_grant(f"client:{FRONT_END}", "tool:files.*", note="Open WebUI may use the files tools.")
    admin.add_grant(f"client:{FRONT_END}", POLICY_PROMPT, note="Open WebUI may read its users' access policy.")


def serve_endpoint(world: Demo) -> Iterator[Endpoint]:
    add_front_end(world)
    double = OllamaDouble()
    with LoopbackServer(double.app) as upstream:
        config = EndpointSettings(upstream, trusted_client=FRONT_END, user_header=USER_HEADER)
        with LoopbackServer(create_app(world.settings, world.engine, ollama=config), lifespan="on") as base:
            yield Endpoint(base, world, double)


@pytest.fixture
def endpoint(sqlite_demo) -> Iterator[Endpoint]:  # noqa: F811
    """The endpoint over the SQLite demo."""
    yield from serve_endpoint(sqlite_demo)


@pytest.fixture
def endpoint_each_db(demo) -> Iterator[Endpoint]:  # noqa: F811
    """The endpoint over the demo on SQLite and on PostgreSQL."""
    yield from serve_endpoint(demo)
