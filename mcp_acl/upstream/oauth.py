"""Bearer tokens towards an upstream from an authorization server, on Authlib's OAuth 2 client.

- Client credentials (RFC 6749 §4.4): the gateway as its own client.
- Token exchange (RFC 8693): the caller's access token as the subject
  token, swapped for one minted for the upstream; the caller's token itself
  is never sent to the upstream.

The token endpoint is `--oauth-token-url`, or (client credentials only) is
discovered from the upstream: its protected-resource metadata (RFC 9728)
names the authorization server, whose metadata (RFC 8414) names the token
endpoint. A token is kept until shortly before it expires and renewed then;
`UpstreamBearer` sends it, and after a 401 renews it once and retries.
The client secret is resolved from its reference for each token request and
never logged; failures are sentences without any secret or token in them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from urllib.parse import urlsplit

import anyio
import httpx2
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from mcp_acl.printable import printable
from mcp_acl.store.upstreams import Upstream, UpstreamOAuth
from mcp_acl.upstream.credentials import MissingCredential, resolve

log = logging.getLogger(__name__)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# Assumed when a token response gives no expires_in.
DEFAULT_LIFETIME_SECONDS = 300.0


class TokenUnavailable(Exception):
    """No token could be had; the message is one sentence naming the endpoint and why, never a secret."""


def no_token(name: str) -> str:
    """What a caller is told when no token for the upstream could be had (the details go to the gateway's log)."""
    return (
        f'the upstream "{name}" cannot be used right now: the gateway could not get a token for it from its '
        "authorization server; try again later, and tell an administrator if this persists"
    )


def refused_token(name: str) -> str:
    """What a caller is told when the upstream refuses even a freshly issued token."""
    return (
        f'the upstream "{name}" did not accept the gateway\'s token for it; tell an administrator '
        "(its OAuth settings for this upstream may be wrong)"
    )


def renew_at(obtained: float, lifetime: float) -> float:
    """When to renew a token obtained at `obtained`: a minute early, or a tenth early for a short-lived one."""
    return obtained + max(lifetime - 60.0, lifetime * 0.9)


class TokenSource:
    """One upstream's current token from one grant, requested when missing or about to expire.

    `subject` (a callable returning the caller's token and its expiry) turns
    the grant into a token exchange; without it, client credentials.
    """

    def __init__(
        self, upstream: Upstream, *, subject: Callable[[], tuple[str, float] | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert upstream.oauth is not None and upstream.url is not None
        self.upstream = upstream
        self.settings: UpstreamOAuth = upstream.oauth
        self.subject = subject
        self.clock = clock
        self.token_url: str | None = self.settings.token_url
        self._resource: str | None = self.settings.resource
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = anyio.Lock()

    async def token(self) -> str:
        """A token to send now; raises TokenUnavailable."""
        async with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._token, self._renew_at = await self._request()
            return self._token

    def invalidate(self, token: str) -> None:
        """`token` was refused by the upstream: the next `token()` asks for a new one (unless one already did)."""
        if self._token == token:
            self._token = None

    async def _request(self) -> tuple[str, float]:
        up, settings = self.upstream, self.settings
        try:
            secret = resolve(settings.client_secret)
        except MissingCredential as exc:
            raise TokenUnavailable(f"its client secret cannot be read: {exc}") from None
        if self.token_url is None:
            async with httpx2.AsyncClient(timeout=httpx2.Timeout(up.timeout_seconds), follow_redirects=False) as http:
                self.token_url, self._resource = await discover_token_endpoint(http, up.url, settings.resource)
            log.info("upstream %s: token endpoint %s (discovered)", up.name, self.token_url)
        async with AsyncOAuth2Client(
            client_id=settings.client_id, client_secret=secret, scope=settings.scope,
            timeout=httpx2.Timeout(up.timeout_seconds), follow_redirects=False,
        ) as oauth:
            params = {"resource": self._resource or up.url}
            if settings.audience:
                params["audience"] = settings.audience
            now = self.clock()
            expires_cap = None
            if self.subject is None:
                params["grant_type"] = "client_credentials"
            else:
                held = self.subject()
                if held is None:
                    raise TokenUnavailable("there is no caller token to exchange (token exchange needs an HTTP caller)")
                subject_token, expires_cap = held
                params.update(
                    grant_type=TOKEN_EXCHANGE, subject_token=subject_token, subject_token_type=ACCESS_TOKEN_TYPE,
                    requested_token_type=ACCESS_TOKEN_TYPE,
                )
            try:
                answer = await oauth.fetch_token(self.token_url, **params)
            except OAuthError as exc:
                # The server's own words, made one printable line (they go to the log).
                detail = printable(f"{exc.error}: {exc.description}" if exc.description else exc.error)[:300]
                raise TokenUnavailable(
                    f"the token endpoint {self.token_url} refused the token request of client {settings.client_id!r} ({detail})"
                ) from None
            except httpx2.HTTPError as exc:
                raise TokenUnavailable(f"the token endpoint {self.token_url} cannot be reached ({exc.__class__.__name__})") from None
            except Exception as exc:
                raise TokenUnavailable(f"the token endpoint {self.token_url} gave no usable answer ({exc.__class__.__name__})") from None
        access = answer.get("access_token")
        if not isinstance(access, str) or not access or str(answer.get("token_type", "")).lower() != "bearer":
            raise TokenUnavailable(f"the token endpoint {self.token_url} issued no bearer token")
        try:
            lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME_SECONDS
        renew = renew_at(now, lifetime)
        if expires_cap is not None:
            # An exchanged token is used no longer than the caller's own token lasts.
            renew = min(renew, expires_cap)
        return access, renew


async def discover_token_endpoint(http: httpx2.AsyncClient, url: str, resource: str | None) -> tuple[str, str]:
    """The token endpoint for the upstream at `url`, and the resource to ask for; raises TokenUnavailable.

    RFC 9728: the 401's `resource_metadata` hint, else the well-known URLs;
    its `resource` must be the upstream's URL (§3.3), and its first
    authorization server's RFC 8414 metadata must name that very issuer.
    """
    from mcp.client.auth.utils import (
        build_oauth_authorization_server_metadata_discovery_urls,
        build_protected_resource_metadata_discovery_urls,
        extract_resource_metadata_from_www_auth,
    )

    hint = None
    try:
        probe = await http.post(url, json={}, headers={"Accept": "application/json, text/event-stream"})
        hint = extract_resource_metadata_from_www_auth(probe) if probe.status_code == 401 else None
    except httpx2.HTTPError as exc:
        raise TokenUnavailable(f"it cannot be reached to discover its authorization server ({exc.__class__.__name__})") from None
    metadata = await _first_object(http, build_protected_resource_metadata_discovery_urls(hint, url))
    servers = (metadata or {}).get("authorization_servers") or []
    if not servers or not isinstance(servers[0], str):
        raise TokenUnavailable("it publishes no protected-resource metadata naming an authorization server (RFC 9728); give --oauth-token-url")
    named = str(metadata.get("resource") or "")
    if _canonical(named) != _canonical(url):
        raise TokenUnavailable(f"its protected-resource metadata is about {named!r}, not {url!r} (RFC 9728 §3.3)")
    issuer = servers[0]
    if not _safe_to_send_secrets(issuer):
        raise TokenUnavailable(f"its authorization server {issuer!r} is not an https URL; give --oauth-token-url")
    server = await _first_object(http, build_oauth_authorization_server_metadata_discovery_urls(issuer, url))
    if not server or not isinstance(server.get("token_endpoint"), str):
        raise TokenUnavailable(f"the authorization server {issuer} publishes no token endpoint (RFC 8414)")
    if _canonical(str(server.get("issuer", ""))) != _canonical(issuer):
        raise TokenUnavailable(f"the metadata of {issuer} names another issuer ({server.get('issuer')!r}; RFC 8414 §3.3)")
    endpoint = server["token_endpoint"]
    if not _safe_to_send_secrets(endpoint):
        raise TokenUnavailable(f"its token endpoint {endpoint!r} is not an https URL; give --oauth-token-url")
    return endpoint, resource or named


def _safe_to_send_secrets(url: str) -> bool:
    # A discovered place the client secret goes to: https, or plain http on this machine only.
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost"))


async def _first_object(http: httpx2.AsyncClient, urls: list[str]) -> dict | None:
    for url in urls:
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
            body = response.json() if response.status_code == 200 else None
        except (httpx2.HTTPError, ValueError):
            continue
        if isinstance(body, dict):
            return body
    return None


def _canonical(url: str) -> str:
    return url.rstrip("/")


class UpstreamBearer(httpx2.Auth):
    """Sends the source's token on every request to the upstream; after a 401, renews it once and retries.

    A token that cannot be had is not raised here (that would end the SDK's
    transport): the request goes without one, the upstream refuses it, and
    `failure` says why for the caller's sentence.
    """

    def __init__(self, source: TokenSource) -> None:
        self.source = source
        # Why the last request went unauthorized (None when it carried a token the upstream accepted).
        self.failure: str | None = None
        # True when that was for want of a token, False when the upstream refused a fresh one.
        self.token_missing = False

    async def ready(self) -> None:
        """Get a token now (before a connection opens or a call is sent); raises TokenUnavailable."""
        try:
            await self.source.token()
        except TokenUnavailable as exc:
            self.failure, self.token_missing = str(exc), True
            raise
        self.failure = None

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        sent = await self._authorize(request)
        response = yield request
        if response.status_code != 401 or sent is None:
            return
        self.source.invalidate(sent)
        if await self._authorize(request) is None:
            return
        response = yield request
        if response.status_code == 401:
            self.failure, self.token_missing = "it refused a freshly issued token (HTTP 401)", False

    async def _authorize(self, request: httpx2.Request) -> str | None:
        try:
            token = await self.source.token()
        except TokenUnavailable as exc:
            self.failure, self.token_missing = str(exc), True
            request.headers.pop("Authorization", None)
            return None
        self.failure = None
        request.headers["Authorization"] = f"Bearer {token}"
        return token


def bearer_for(upstream: Upstream) -> UpstreamBearer | None:
    """The auth hook of an upstream's shared connection: client credentials when it has OAuth settings, else None.

    A token-exchange upstream's shared connection (which lists the tools) also
    uses client credentials; calls go over per-caller connections.
    """
    if upstream.oauth is None or upstream.transport != "http":
        return None
    return UpstreamBearer(TokenSource(upstream))
