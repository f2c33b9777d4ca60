"""Finding an external issuer's JWKS: RFC 8414 and OpenID Connect discovery.

https://www.rfc-editor.org/rfc/rfc8414 (OAuth 2.0 Authorization Server Metadata)
https://openid.net/specs/openid-connect-discovery-1_0.html

The metadata document must name exactly the configured issuer (RFC 8414
§3.3); a document naming another issuer is refused, never followed.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import httpx2

from mcp_acl.auth.errors import KeysUnavailable

logger = logging.getLogger(__name__)

OAUTH_SUFFIX = "/.well-known/oauth-authorization-server"
OPENID_SUFFIX = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 512 * 1024


def discovery_urls(issuer: str) -> list[str]:
    """The metadata URLs to try for `issuer`, in order, without repeats.

    Example: https://kc.example/realms/acme ->
      https://kc.example/.well-known/oauth-authorization-server/realms/acme  (RFC 8414 §3.1)
      https://kc.example/realms/acme/.well-known/openid-configuration       (OpenID)
      https://kc.example/realms/acme/.well-known/oauth-authorization-server (common variant)
    """
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    base = origin + path
    urls = [origin + OAUTH_SUFFIX + path, base + OPENID_SUFFIX, base + OAUTH_SUFFIX]
    return list(dict.fromkeys(urls))


async def fetch_json(client: httpx2.AsyncClient, url: str) -> object | None:
    """The JSON at `url`; None for a non-200 answer; KeysUnavailable when unreachable or not JSON."""
    body = bytearray()
    try:
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                return None
            # Read in pieces so an endless or huge answer is cut off, not buffered.
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeysUnavailable(f"the document at {url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx2.HTTPError as exc:
        raise KeysUnavailable(f"cannot reach {url}: {exc.__class__.__name__}") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise KeysUnavailable(f"the document at {url} is not JSON") from exc


async def discover_jwks_uri(client: httpx2.AsyncClient, issuer: str) -> str:
    """The `jwks_uri` from `issuer`'s metadata document, checked to name `issuer` exactly."""
    for url in discovery_urls(issuer):
        document = await fetch_json(client, url)
        if not isinstance(document, dict):
            continue
        named = document.get("issuer")
        if named != issuer:
            # RFC 8414 §3.3: a mismatch means the document is not this issuer's.
            raise KeysUnavailable(f"the metadata at {url} names issuer {named!r}, not the configured {issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("https", "http"):
            raise KeysUnavailable(f"the metadata at {url} has no usable jwks_uri")
        logger.info("issuer %s publishes its keys at %s", issuer, jwks_uri)
        return jwks_uri
    raise KeysUnavailable(f"no metadata document found for issuer {issuer} (tried {', '.join(discovery_urls(issuer))})")
