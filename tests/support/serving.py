"""Run an ASGI app under uvicorn on 127.0.0.1, port 0, in a thread of its own.

A thread with its own event loop behaves like another process: the code under
test reaches the app only over real HTTP, and a test may block (a subprocess,
a synchronous client) without stalling the server.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """A uvicorn server that says when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        self.ready.set()


class ServerThread:
    """A context manager serving `app` on loopback; `url` is its base URL."""

    def __init__(self, app: Any, *, lifespan: str = "auto") -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan=lifespan,
            log_level="warning",
            ws="none",
            # Long-lived SSE streams must not hold a finished test hostage.
            timeout_graceful_shutdown=2,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            # uvicorn leaves signals alone outside the main thread.
            asyncio.run(self._server.serve())
        except BaseException as exc:  # reported to the test thread in __enter__
            self._error = exc
        finally:
            self._server.ready.set()

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        self._server.ready.wait()
        if self._error is not None or not self._server.started:
            raise RuntimeError(f"test server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join()

    @property
    def port(self) -> int:
        """The port the kernel chose."""
        return self._server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.port}"
