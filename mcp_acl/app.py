"""The HTTP application: /mcp (Streamable HTTP, both protocol eras), /healthz, /readyz, /metrics, OAuth discovery.

Everything is wired here, in `create_app`, and nowhere at import time:
the gateway (catalogue, policy, audit, sessions, notifier), the token
verifier and the auth middleware in front of /mcp. The lifespan runs the
SDK's session manager (a mounted app's own lifespan would not run), the
notifier and the killed-session reaper.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from mcp.server.transport_security import TransportSecuritySettings
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from mcp_acl.auth.identity import identity_from_claims
from mcp_acl.auth.metadata import auth_routes
from mcp_acl.auth.middleware import protect
from mcp_acl.auth.setup import build_verifier, signing_keys
from mcp_acl.config import Settings
from mcp_acl.console import admin_redirect, console_app
from mcp_acl.gateway.approval_page import approval_page
from mcp_acl.gateway.drain import RefuseWhileDraining, end_listen_streams, end_sessions
from mcp_acl.gateway.edge import HttpEdge
from mcp_acl.gateway.refusals import RefusalLog
from mcp_acl.gateway.runtime import Gateway, build_gateway
from mcp_acl.gateway.sessions import CLOSED
from mcp_acl.gateway.transport import GatewaySessionManager, KilledReaper, McpEndpoint
from mcp_acl.oauth import oauth_routes
from mcp_acl.oauth.pages import AccessSummary
from mcp_acl.oauth.signin_limits import SignInLimits
from mcp_acl.observe import logs, tracing
from mcp_acl.observe.context import RequestScope
from mcp_acl.observe.health import healthz, readiness_check
from mcp_acl.observe.tracing import TracedHttp
from mcp_acl.ollama_endpoint import EndpointSettings
from mcp_acl.policy import limits
from mcp_acl.store import PolicyLoader
from mcp_acl.store.approvals import ApprovalStore

log = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: accept the loopback names and the resource URL's own host."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    parts = urlsplit(settings.resource_url)
    if parts.hostname and parts.hostname not in _LOOPBACK:
        hosts.append(parts.netloc)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def create_app(
    settings: Settings, engine: Engine, *, gateway: Gateway | None = None, metrics: bool = False,
    ollama: EndpointSettings | None = None,
) -> Starlette:
    """The Starlette app serving mcp-acl over HTTP; `metrics` adds /metrics (observe/metrics.py), `ollama` the governed Ollama API under /ollama."""
    gateway = gateway if gateway is not None else build_gateway(settings, engine)
    server, guard = gateway.server(HttpEdge(settings, identity_from_claims))
    if tracing.enabled() or logs.active():
        # First, so the SDK's own span for the request nests in the HTTP request's trace.
        server.middleware.insert(0, RequestScope())
    refusals = RefusalLog(gateway.invoker.audit)

    async def on_ended(session_id: str) -> None:
        guard.forget(session_id)
        await anyio.to_thread.run_sync(gateway.sessions.end, session_id, CLOSED)

    manager = GatewaySessionManager(
        server, on_ended=on_ended, on_get_stream=gateway.outboxes.stream_changed,
        security_settings=transport_security(settings),
    )
    reaper = KilledReaper(manager, gateway.sessions)
    gateway.commit_listeners.append(reaper.wake)
    # Personal tokens are read on the event loop as the deny-list is, on the admissions' standing connection.
    verifier = build_verifier(settings, engine, standing=gateway.invoker.standing)
    revoked = gateway.revoked.is_revoked if gateway.revoked is not None else None
    endpoint = protect(McpEndpoint(manager), verifier, settings, on_refused=refusals.on_refused, revoked=revoked)
    endpoint = RefuseWhileDraining(endpoint, gateway.calls)
    if tracing.enabled():
        endpoint = TracedHttp(endpoint, "/mcp")
    closers = []  # run at shutdown, after the sessions are closed
    ollama_served = []
    if ollama is not None:
        from mcp_acl.ollama_endpoint.routes import ollama_routes

        ollama_served, close_ollama = ollama_routes(
            ollama, gateway, settings, verifier, on_refused=refusals.on_refused, revoked=revoked)
        closers.append(close_ollama)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run(), anyio.create_task_group() as tg:
            await tg.start(gateway.run_background)
            await tg.start(refusals.run)
            tg.start_soon(reaper.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await _close_open_sessions(gateway, manager.session_ids())
                    for close in closers:
                        await close()

    keys = signing_keys(settings, engine)
    sign_in_limits = SignInLimits()
    routes = [
        Route("/mcp", endpoint=endpoint),
        Route("/healthz", endpoint=healthz, methods=["GET"]),
        Route("/readyz", endpoint=readiness_check(gateway), methods=["GET"]),
        Route("/approvals/{request_id}", endpoint=approval_page(ApprovalStore(engine)), methods=["GET"]),
        *auth_routes(settings, keys),
        *oauth_routes(
            settings, engine, keys, limits=sign_in_limits, on_sign_in_refused=refusals.sign_in_refused,
            access=partial(consent_access, gateway, settings),
        ),
        *ollama_served,
    ]
    # The admin web console (mcp_acl/console): signed in through the issuer above, decided by the same policy.
    routes += [Route("/admin", endpoint=admin_redirect(), methods=["GET"]), Mount("/admin", console_app(settings, engine, gateway, keys))]
    if metrics:
        routes.append(Route("/metrics", endpoint=metrics_endpoint(gateway, manager), methods=["GET"]))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    # For a graceful shutdown (cli/shutdown.py): what stays open is ended, listen streams first.
    app.state.end_listen_streams = partial(end_listen_streams, server)
    app.state.end_sessions = partial(end_sessions, manager)
    app.state.session_manager = manager
    app.state.sign_in_limits = sign_in_limits
    return app


def consent_access(gateway: Gateway, settings: Settings, user: str, client_id: str) -> AccessSummary:
    """What `user` signing in through `client_id` could list: the gateway's own listing for that token's identity."""
    # The identity the token about to be issued will carry, built the way the bearer guard builds it.
    claims = {"iss": settings.embedded_issuer_url, "sub": user, "client_id": client_id, "scope": settings.required_scope}
    identity = identity_from_claims(claims, settings)
    invoker = gateway.invoker
    policy, now = invoker.policies.current(), invoker.clock()
    listing = invoker.views.listing(policy, identity, now)
    return AccessSummary(
        tools=tuple(t.name for t in listing.tools),
        resources=tuple(r.uri for r in listing.resources) + tuple(t.uri_template for t in listing.templates),
        prompts=tuple(p.name for p in listing.prompts),
        client_restricted=policy.is_restricted(client_id),
        limits={t.name: tuple(limits(policy, identity, f"tool:{t.name}", now)) for t in listing.tools},
    )


def metrics_endpoint(gateway: Gateway, manager: GatewaySessionManager):
    """Turn the gateway's metrics on and return the /metrics endpoint."""
    from mcp_acl.observe.metrics import Metrics

    found = Metrics()
    found.watch_sessions(lambda: len(manager.session_ids()))
    found.watch_calls(lambda: gateway.calls.count)
    gateway.metrics = gateway.invoker.metrics = gateway.calls.metrics = found
    gateway.notifier.on_notified = found.notified
    if isinstance(gateway.invoker.policies, PolicyLoader):
        gateway.invoker.policies.on_reload = found.reloaded
    # The notifier holds the policy this process serves, looked at four times a second.
    found.watch_revision(lambda: gateway.notifier.policy.revision if gateway.notifier.policy is not None else 0)

    async def serve_metrics(request: Request) -> Response:
        body, content_type = found.exposition()
        return Response(body, media_type=content_type)

    return serve_metrics


async def _close_open_sessions(gateway: Gateway, session_ids: list[str]) -> None:
    # The SDK forgets its sessions on shutdown without discarding them one by one.
    for session_id in session_ids:
        try:
            await anyio.to_thread.run_sync(gateway.sessions.end, session_id, CLOSED)
        except Exception as exc:
            log.warning("could not record the end of session %s: %s", session_id[:12], exc.__class__.__name__)
