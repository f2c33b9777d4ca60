"""Signing in to the console through an external identity provider (`MCP_ACL_ISSUER` set).

The provider must know the console as a client: its id in
`MCP_ACL_CONSOLE_CLIENT_ID` (and, for a confidential client, its secret in
`MCP_ACL_CONSOLE_CLIENT_SECRET`), with /admin/callback as a redirect URI,
and must put the resource URL in the access token's `aud` (as for MCP
clients). The endpoints come from the provider's metadata document, which
must name the configured issuer exactly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx2

from mcp_acl.auth.discovery import discovery_urls, fetch_json
from mcp_acl.auth.errors import KeysUnavailable

CLIENT_ID_ENV = "MCP_ACL_CONSOLE_CLIENT_ID"
CLIENT_SECRET_ENV = "MCP_ACL_CONSOLE_CLIENT_SECRET"


class ProviderError(RuntimeError):
    """The provider's metadata or token endpoint could not be used."""


@dataclass(frozen=True)
class Endpoints:
    authorization: str
    token: str


class ExternalProvider:
    """The console's OAuth client side against an external provider."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.client_id = os.environ.get(CLIENT_ID_ENV) or None
        self.client_secret = os.environ.get(CLIENT_SECRET_ENV) or None
        self._endpoints: Endpoints | None = None

    async def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            self._endpoints = await self._discover()
        return self._endpoints

    async def _discover(self) -> Endpoints:
        async with httpx2.AsyncClient(timeout=10, follow_redirects=False) as client:
            for url in discovery_urls(self.issuer):
                try:
                    document = await fetch_json(client, url)
                except KeysUnavailable as exc:
                    raise ProviderError(str(exc)) from exc
                if not isinstance(document, dict):
                    continue
                if document.get("issuer") != self.issuer:
                    raise ProviderError(f"the metadata at {url} names another issuer")
                found = document.get("authorization_endpoint"), document.get("token_endpoint")
                if not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in found):
                    raise ProviderError(f"the metadata at {url} has no usable authorization and token endpoints")
                return Endpoints(*found)
        raise ProviderError(f"no metadata document found for issuer {self.issuer}")

    async def exchange(self, code: str, verifier: str, redirect_uri: str, resource: str) -> str | None:
        """The access token for `code`, or None when the provider refuses it."""
        endpoints = await self.endpoints()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier, "resource": resource}
        auth = None
        if self.client_secret:
            auth = httpx2.BasicAuth(self.client_id or "", self.client_secret)
        else:
            form["client_id"] = self.client_id or ""
        try:
            async with httpx2.AsyncClient(timeout=10, follow_redirects=False) as client:
                answer = await client.post(endpoints.token, data=form, auth=auth, headers={"Accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise ProviderError(f"cannot reach the token endpoint: {exc.__class__.__name__}") from exc
        if answer.status_code != 200:
            return None
        try:
            token = answer.json().get("access_token")
        except ValueError:
            return None
        return token if isinstance(token, str) else None
