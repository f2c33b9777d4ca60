"""Fixtures for the auth tests: servers on loopback and a test issuer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from joserfc.jwk import RSAKey

from tests.auth.support import LoopbackServer, TestIssuer


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start apps on loopback for one test: `url = serve(app)`; all stop at teardown."""
    servers: list[LoopbackServer] = []

    def start(app, *, lifespan: str = "off") -> str:
        server = LoopbackServer(app, lifespan=lifespan)
        url = server.__enter__()
        servers.append(server)
        return url

    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)


@pytest.fixture
def test_issuer(serve) -> Callable[..., TestIssuer]:
    """Start a TestIssuer on loopback: `issuer = test_issuer(documents=("oauth",))`."""

    def start(**options) -> TestIssuer:
        issuer = TestIssuer(key=RSAKey.generate_key(2048, auto_kid=False), **options)
        issuer.url = serve(issuer.app())
        return issuer

    return start
