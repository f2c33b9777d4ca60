"""Fixtures for agent tests: the Ollama double and a small MCP gateway, each on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The real gateway over the demo seed: fixtures `demo` and `gateway`.
from tests.support.demo_gateway import demo, gateway  # noqa: F401
from tests.support.mini_gateway import MiniGateway, Rule
from tests.support.ollama_double import OllamaDouble
from tests.support.serving import ServerThread

TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}


@pytest.fixture
def double() -> OllamaDouble:
    """The scripted Ollama; add turns with `double.add(...)`."""
    return OllamaDouble()


@pytest.fixture
def ollama_server(double) -> Iterator[ServerThread]:
    """The double on 127.0.0.1, port 0."""
    with ServerThread(double.app) as server:
        yield server


@pytest.fixture
def mini() -> MiniGateway:
    """alice lists and reads any note; bob lists, and reads only public/ notes."""
    return MiniGateway(
        rules=[
            Rule("alice", "notes.list"),
            Rule("alice", "notes.read"),
            Rule("bob", "notes.list"),
            Rule("bob", "notes.read", when=lambda a: str(a.get("path", "")).startswith("public/"),
                 note="bob reads public/ notes only"),
        ],
        tokens=dict(TOKENS),
        client_secrets={"reporter": "s3cret/with:odd chars"},
    )


@pytest.fixture
def mini_server(mini) -> Iterator[ServerThread]:
    """The small gateway on 127.0.0.1, port 0 (its MCP endpoint is `url + "/mcp"`)."""
    with ServerThread(mini.app, lifespan="on") as server:
        yield server
