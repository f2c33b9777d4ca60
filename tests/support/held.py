"""A call held for approval, driven from a test: started in a task group, found pending, answered, ended.

    async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
        ...  # answer held.request (the CLI, the console, the store)
    assert not held.result.is_error

The call's result is there once the block has ended (the task group waits for the call).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from tests.gateway.harness import wait_for


@dataclass
class Held:
    """The pending approval request of a held call and, after the block, the call's result."""

    request: Any = None
    results: list[Any] = field(default_factory=list)
    cancel: Callable[[], None] = lambda: None

    @property
    def result(self) -> Any:
        """The one result the call came back with."""
        [result] = self.results
        return result


@asynccontextmanager
async def held_call(call: Callable[[], Awaitable[Any]], pending: Callable[[], list[Any]]) -> AsyncIterator[Held]:
    """Run `call` in the background until `pending()` lists exactly one request (the call's); `held.cancel()` gives it up."""
    held = Held()
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            held.results.append(await call())

        tg.start_soon(run)
        found = await wait_for(pending)
        assert len(found) == 1, found
        held.request = found[0]
        held.cancel = tg.cancel_scope.cancel
        yield held
