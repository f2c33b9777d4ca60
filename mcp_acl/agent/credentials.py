"""Where the agent's bearer token comes from: given, or the client credentials grant.

The client credentials grant (RFC 6749 §4.4, https://www.rfc-editor.org/rfc/rfc6749#section-4.4)
finds its token endpoint the standard way: the gateway's protected-resource
metadata (RFC 9728) names the authorization server, whose metadata (RFC 8414)
names the token endpoint. The request carries the resource indicator
(RFC 8707) so the token is minted for this gateway. Secrets are sent only to
that token endpoint and never logged.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncGenerator
from typing import Any, Protocol
from urllib.parse import quote

import anyio
import httpx2
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
)

from mcp_acl.agent.errors import CredentialsRefused, DiscoveryFailed, GatewayUnreachable, SettingsError

# Renew a little before expiry so a request never leaves with a token about to lapse.
_EXPIRY_MARGIN = 30.0


class TokenSource(Protocol):
    """Anything that can hand out the current bearer token."""

    async def token(self) -> str:
        """The bearer token to send now."""
        ...


class StaticToken:
    """A token given on the command line or by the embedding program."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        """The same token every time."""
        return self._token


class BearerAuth(httpx2.Auth):
    """Adds `Authorization: Bearer …` (RFC 6750 §2.1) from a token source to every request."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = f"Bearer {await self._source.token()}"
        yield request


class ClientCredentials:
    """Tokens from the gateway's issuer by the client credentials grant, renewed before they expire."""

    def __init__(self, resource_url: str, client_id: str, client_secret: str, scope: str | None = None) -> None:
        self.resource_url = resource_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = anyio.Lock()
        self.token_endpoint: str | None = None
        self._auth_methods: list[str] = []
        self._resource: str | None = None
        self._default_scope: str | None = None

    async def token(self) -> str:
        """A valid access token, requested (once discovery is done) when the last one is near expiry."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                async with httpx2.AsyncClient(timeout=30.0) as http:
                    endpoint = self.token_endpoint or await self._discover(http)
                    self._token, lifetime = await self._request(http, endpoint)
                self._expires_at = time.monotonic() + max(lifetime - _EXPIRY_MARGIN, lifetime / 2)
            return self._token

    async def _discover(self, http: httpx2.AsyncClient) -> str:
        """RFC 9728 resource metadata → authorization server → RFC 8414 metadata → token endpoint."""
        # The well-known URLs first: probing the endpoint itself would leave a refused
        # authentication in the gateway's audit log.
        urls = build_protected_resource_metadata_discovery_urls(None, self.resource_url)
        resource = await _first_json(http, urls)
        if resource is None:
            hint = await self._metadata_hint(http)
            resource = await _first_json(http, [hint]) if hint else None
        servers = (resource or {}).get("authorization_servers") or []
        if not servers:
            raise DiscoveryFailed(
                f"the gateway at {self.resource_url} publishes no OAuth protected-resource metadata "
                "naming an authorization server (RFC 9728): use --token instead"
            )
        issuer = str(servers[0])
        self._resource = str(resource.get("resource") or self.resource_url) if resource else self.resource_url
        # Without a scope of its own, ask for what the resource says it needs (as MCP clients do).
        self._default_scope = " ".join((resource or {}).get("scopes_supported") or []) or None
        metadata = await _first_json(http, build_oauth_authorization_server_metadata_discovery_urls(issuer, issuer))
        if not metadata or not metadata.get("token_endpoint"):
            raise DiscoveryFailed(f"the authorization server {issuer} publishes no token endpoint (RFC 8414)")
        # RFC 8414 §3.3: the metadata must be about the issuer we asked for.
        if str(metadata.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise DiscoveryFailed(f"the metadata at {issuer} names another issuer ({metadata.get('issuer')!r})")
        grants = metadata.get("grant_types_supported")
        if grants is not None and "client_credentials" not in grants:
            raise DiscoveryFailed(f"the authorization server {issuer} does not offer the client credentials grant")
        self.token_endpoint = str(metadata["token_endpoint"])
        self._auth_methods = list(metadata.get("token_endpoint_auth_methods_supported") or [])
        return self.token_endpoint

    async def _metadata_hint(self, http: httpx2.AsyncClient) -> str | None:
        # An unauthenticated request draws the 401 whose WWW-Authenticate may point at the metadata.
        try:
            response = await http.post(self.resource_url, json={}, headers={"Accept": "application/json, text/event-stream"})
        except httpx2.TransportError as exc:
            raise GatewayUnreachable(self.resource_url, type(exc).__name__) from None
        return extract_resource_metadata_from_www_auth(response) if response.status_code == 401 else None

    async def _request(self, http: httpx2.AsyncClient, endpoint: str) -> tuple[str, float]:
        """The token request itself (RFC 6749 §4.4.2), authenticating the client per §2.3.1."""
        form: dict[str, str] = {"grant_type": "client_credentials", "resource": self._resource or self.resource_url}
        scope = self.scope or self._default_scope
        if scope:
            form["scope"] = scope
        headers = {"Accept": "application/json"}
        if self._auth_methods and "client_secret_basic" not in self._auth_methods and (
            "client_secret_post" in self._auth_methods
        ):
            form.update(client_id=self.client_id, client_secret=self._secret)
        else:
            # §2.3.1: id and secret are form-urlencoded before they are joined for Basic.
            pair = f"{quote(self.client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        try:
            response = await http.post(endpoint, data=form, headers=headers)
        except httpx2.TransportError as exc:
            raise CredentialsRefused(f"cannot reach the token endpoint {endpoint}: {type(exc).__name__}")
        body = _json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            detail = body.get("error_description") if isinstance(body, dict) else None
            what = f"{error}" + (f": {detail}" if detail else "") if error else f"HTTP {response.status_code}"
            raise CredentialsRefused(
                f"the token endpoint {endpoint} refused client {self.client_id!r} ({what}): "
                "check --client-id and the secret"
            )
        if str(body.get("token_type", "")).lower() != "bearer":
            raise CredentialsRefused(f"the token endpoint issued a {body.get('token_type')!r} token, not a bearer token")
        return str(body["access_token"]), float(body.get("expires_in") or 300)


async def _first_json(http: httpx2.AsyncClient, urls: list[str]) -> dict[str, Any] | None:
    """The first URL that answers 200 with a JSON object."""
    for url in urls:
        try:
            response = await http.get(url, headers={"Accept": "application/json"})
        except httpx2.TransportError:
            continue
        body = _json_or_none(response) if response.status_code == 200 else None
        if isinstance(body, dict):
            return body
    return None


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def token_source(resource_url: str, *, token: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, scope: str | None = None) -> TokenSource:
    """A given token, or the client credentials grant; exactly one of the two must be given."""
    if token and (client_id or client_secret):
        raise SettingsError("give either a token or client credentials, not both")
    if token:
        return StaticToken(token)
    if client_id and client_secret:
        return ClientCredentials(resource_url, client_id, client_secret, scope)
    if client_id or client_secret:
        raise SettingsError("client credentials need both --client-id and --client-secret (or MCP_ACL_CLIENT_SECRET)")
    raise SettingsError("no credentials: give --token (or MCP_ACL_TOKEN), or --client-id and --client-secret")
