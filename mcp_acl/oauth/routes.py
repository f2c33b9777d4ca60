"""The embedded issuer's HTTP routes, for `create_app` to include.

Only when mcp-acl is its own issuer: with `MCP_ACL_ISSUER` set there are no
routes at all, so every embedded endpoint answers 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.config import Settings
from mcp_acl.oauth.adapter import BodyError, read_request
from mcp_acl.oauth.cimd import FetchPolicy
from mcp_acl.oauth.cimd_admission import DocumentAdmission
from mcp_acl.oauth.metadata import AUTHORIZE_PATH, REGISTER_PATH, REVOKE_PATH, TOKEN_PATH, metadata_paths, server_metadata
from mcp_acl.oauth.options import ServerOptions
from mcp_acl.oauth.registration import CLOSED_ERROR, CLOSED_STATUS
from mcp_acl.oauth.server import EmbeddedAuthorizationServer
from mcp_acl.oauth.signin import CONSENT_PATH, LOGIN_PATH, AccessPreview, SignInFlow, SignInRefused
from mcp_acl.oauth.signin_limits import SignInLimits
from mcp_acl.oauth.signin_requests import SignInRequests

# Browser-based clients (the MCP Inspector) call these cross-origin. No
# cookies are involved, so a wildcard origin gives nothing away.
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "600",
}
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Endpoint = Callable[[Request], Awaitable[Response]]


def options_from(settings: Settings) -> ServerOptions:
    """The embedded issuer's options from the settings."""
    documents = FetchPolicy(
        allow_private=settings.cimd_allow_private, allow_http=settings.cimd_allow_http, timeout=settings.cimd_timeout,
        ca_file=settings.cimd_ca_file,
    )
    return ServerOptions(
        issuer=settings.embedded_issuer_url, resource=settings.resource_url, scope=settings.required_scope,
        metadata_documents=documents,
        document_admission=DocumentAdmission(enabled=settings.cimd, allowed_hosts=settings.cimd_allowed_hosts),
        registration=settings.registration,
    )


def _cors(endpoint: Endpoint) -> Endpoint:
    async def wrapped(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=_CORS)
        response = await endpoint(request)
        response.headers.update(_CORS)
        return response

    return wrapped


def _oauth_endpoint(server: EmbeddedAuthorizationServer, respond, *, expect_json: bool = False) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            data = await read_request(request, server.options.origin, expect_json=expect_json)
        except BodyError as exc:
            return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400, headers=_NO_STORE)
        return await run_in_threadpool(respond, data)

    return endpoint


async def _registration_closed(request: Request) -> Response:
    # Nothing is read or stored; the route stays so that a client hears why, not a bare 404.
    return JSONResponse(CLOSED_ERROR, CLOSED_STATUS, headers=_NO_STORE)


def oauth_routes(
    settings: Settings, engine: Engine, keys: SigningKeys | None, *, limits: SignInLimits | None = None,
    on_sign_in_refused: SignInRefused | None = None, access: AccessPreview | None = None,
) -> list[Route]:
    """The routes of RFC 8414 metadata, /authorize (+ sign-in forms), /token, /register and /revoke.

    Empty when an external issuer is configured (or no keys are given). The
    JWKS is served by `mcp_acl.auth.metadata.auth_routes`. `limits` holds the
    failed sign-in back-off, `on_sign_in_refused` audits refused sign-ins and
    `access` tells the consent page what the client would be able to use
    (create_app wires all three to the gateway).
    """
    if not settings.embedded_issuer or keys is None:
        return []
    options = options_from(settings)
    server = EmbeddedAuthorizationServer(engine, keys, options)
    flow = SignInFlow(
        server, SignInRequests(engine, ttl=options.sign_in_ttl), limits=limits, on_refused=on_sign_in_refused, access=access,
    )
    document = json.dumps(server_metadata(options))

    async def metadata(request: Request) -> Response:
        return Response(document, media_type="application/json", headers={"Cache-Control": "public, max-age=300"})

    token = _oauth_endpoint(server, server.create_token_response)
    if options.registration:
        register = _oauth_endpoint(server, lambda data: server.create_endpoint_response("client_registration", data), expect_json=True)
    else:
        register = _registration_closed
    revoke = _oauth_endpoint(server, lambda data: server.create_endpoint_response("revocation", data))
    prefix = options.path
    return [
        *(Route(path, _cors(metadata), methods=["GET", "OPTIONS"]) for path in metadata_paths(options)),
        Route(prefix + AUTHORIZE_PATH, flow.authorize, methods=["GET"]),
        Route(prefix + LOGIN_PATH, flow.login, methods=["POST"]),
        Route(prefix + CONSENT_PATH, flow.consent, methods=["POST"]),
        Route(prefix + TOKEN_PATH, _cors(token), methods=["POST", "OPTIONS"]),
        Route(prefix + REGISTER_PATH, _cors(register), methods=["POST", "OPTIONS"]),
        Route(prefix + REVOKE_PATH, _cors(revoke), methods=["POST", "OPTIONS"]),
    ]
