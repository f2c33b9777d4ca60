"""Fixtures for agent tests: the Ollama double and the real gateway over the demo, each on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The real gateway over the demo seed: fixtures `demo` and `gateway`.
from tests.support.demo_gateway import demo, gateway  # noqa: F401
from tests.support.ollama_double import OllamaDouble
from tests.support.serving import ServerThread


@pytest.fixture
def double() -> OllamaDouble:
    """The scripted Ollama; add turns with `double.add(...)`."""
    return OllamaDouble()


@pytest.fixture
def ollama_server(double) -> Iterator[ServerThread]:
    """The double on 127.0.0.1, port 0."""
    with ServerThread(double.app) as server:
        yield server
