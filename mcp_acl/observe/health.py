"""/healthz (the process is alive) and /readyz (it can serve a call now).

Neither needs a token or says anything secret: /readyz names what is
missing in a few fixed words, never an error message (which could carry
a connection string).
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse

from mcp_acl.gateway.runtime import Gateway
from mcp_acl.store.loader import read_revision


async def healthz(request: Request) -> JSONResponse:
    """200 while the process runs and its event loop answers; no I/O, so a database outage does not restart it."""
    return JSONResponse({"status": "ok"})


def readiness_check(gateway: Gateway):
    """The /readyz endpoint for `gateway`."""

    def database_revision() -> int:
        with gateway.engine.connect() as conn:
            return read_revision(conn)

    async def readyz(request: Request) -> JSONResponse:
        reasons = []
        if gateway.calls.draining:
            reasons.append("shutting down")
        revision = None
        try:
            revision = await anyio.to_thread.run_sync(database_revision)
        except Exception as exc:
            reasons.append(f"database unreachable ({exc.__class__.__name__})")
        # The notifier loads the policy when serving starts and looks at it
        # four times a second: the policy it holds is the one this process serves.
        if gateway.notifier.policy is None:
            reasons.append("policy not loaded")
        if gateway.listening is False:
            reasons.append("not listening for commits")
        if reasons:
            return JSONResponse({"status": "unavailable", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready", "revision": revision})

    return readyz
