"""OAuth 2.0 Protected Resource Metadata (RFC 9728) and the embedded issuer's JWKS.

https://www.rfc-editor.org/rfc/rfc9728

The metadata tells a client which authorization server issues tokens for
this MCP endpoint. It is served at `/.well-known/oauth-protected-resource`
and, per RFC 9728 §3.1, at that path followed by the resource's path
(`/.well-known/oauth-protected-resource/mcp`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.config import Settings

WELL_KNOWN = "/.well-known/oauth-protected-resource"
JWKS_PATH = "/jwks.json"
# Browser-based clients (the MCP Inspector) read these documents cross-origin.
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, OPTIONS"}


def resource_metadata_url(settings: Settings) -> str:
    """The URL of this resource's metadata, as 401 answers name it (RFC 9728 §3.1, §5.1).

    Example: http://127.0.0.1:8000/mcp -> http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp
    """
    parts = urlsplit(settings.resource_url)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}"


def resource_metadata(settings: Settings) -> dict:
    """The RFC 9728 §2 document for this resource."""
    return {
        "resource": settings.resource_url,
        "authorization_servers": [settings.expected_issuer],
        "scopes_supported": [settings.required_scope],
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-acl",
    }


def _json_endpoint(build, max_age: int):
    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=_CORS)
        headers = {**_CORS, "Cache-Control": f"public, max-age={max_age}"}
        # In a thread: the JWKS is read from the database.
        return JSONResponse(await run_in_threadpool(build), headers=headers)

    return endpoint


def auth_routes(settings: Settings, keys: SigningKeys | None) -> list[Route]:
    """The metadata routes; with the embedded issuer's `keys`, also its JWKS at /jwks.json."""
    document = resource_metadata(settings)
    metadata = _json_endpoint(lambda: document, 3600)
    paths = list(dict.fromkeys([WELL_KNOWN, urlsplit(resource_metadata_url(settings)).path]))
    routes = [Route(path, metadata, methods=["GET", "OPTIONS"]) for path in paths]
    if keys is not None:
        # Short-lived in caches: after a rotation the new key must be found quickly.
        routes.append(Route(JWKS_PATH, _json_endpoint(keys.jwks, 60), methods=["GET", "OPTIONS"]))
    return routes
