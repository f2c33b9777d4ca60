"""What the installed dependencies must let us rely on at run time."""

from __future__ import annotations

import importlib.abc
import sys

import anyio
import httpcore


class _Searches(importlib.abc.MetaPathFinder):
    """Counts the module searches the import system makes (a cached import makes none)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, name, path, target=None):
        self.names.append(name)
        return None


def test_an_http_request_searches_for_no_module():
    # httpcore asks `import sniffio` per lock and per cancel shield; without sniffio installed
    # each one searched sys.path again: the cost of every request to Ollama and upstreams.
    searches = _Searches()

    async def run() -> None:
        # The primitives one pooled request makes: its pool lock and a shielded close.
        lock = httpcore._synchronization.AsyncLock()
        async with lock:
            pass
        with httpcore._synchronization.AsyncShieldCancellation():
            pass

    sys.meta_path.insert(0, searches)
    try:
        anyio.run(run)
    finally:
        sys.meta_path.remove(searches)
    assert "sniffio" not in searches.names
