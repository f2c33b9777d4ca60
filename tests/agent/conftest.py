"""Fixtures for agent tests: the Ollama double and the real gateway over the demo, each on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The real gateway over the demo seed: fixtures `demo` and `gateway_url`.
from tests.support.demo_gateway import demo, gateway_url  # noqa: F401
from tests.support.ollama_double import OllamaDouble
from tests.auth.support import LoopbackServer


@pytest.fixture
def double() -> OllamaDouble:
    """The scripted Ollama; add turns with `double.add(...)`."""
    return OllamaDouble()


@pytest.fixture
def ollama_url(double) -> Iterator[str]:
    """The double's URL: it serves on 127.0.0.1, port 0."""
    with LoopbackServer(double.app) as url:
        yield url
