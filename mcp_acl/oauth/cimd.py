"""Client ID Metadata Documents (the MCP authorization spec of 2026-07-28,
draft-ietf-oauth-client-id-metadata-document): a client whose `client_id` is
an https URL needs no registration; the URL names a small JSON document the
client publishes about itself, and this module fetches and checks it.

Fetching a URL a stranger chose is a server-side request forgery risk, so:
the host is resolved once and every address it resolves to must be public
(no loopback, private, link-local, multicast or reserved address unless
`allow_private`); the connection goes to the address that was checked (no
second DNS lookup, TLS still verified against the host name); redirects are
not followed; the whole fetch has a time limit and the body a size limit;
only `application/json` is read. Documents are cached in memory by URL for
their `max-age`, within bounds. A failure is never cached and stores nothing.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp_acl.oauth import redirects

PUBLIC = "none"
CODE_GRANTS = ("authorization_code", "refresh_token")
MAX_URL_LENGTH = 255  # the clients table's client_id column
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_STORE = re.compile(r"(?:^|,)\s*(no-store|no-cache)\b", re.IGNORECASE)


class MetadataDocumentError(ValueError):
    """A client metadata document that cannot be used; the message says why, for the OAuth error."""


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of a metadata document fetch (see the module docstring)."""

    allow_private: bool = False  # MCP_ACL_CIMD_ALLOW_PRIVATE=1
    allow_http: bool = False  # MCP_ACL_CIMD_ALLOW_HTTP=1: testing only, and only with allow_private
    timeout: float = 5.0
    max_bytes: int = 5 * 1024
    default_ttl: int = 300
    max_ttl: int = 3600
    max_cached: int = 1000
    ca_file: str | None = None  # MCP_ACL_CIMD_CA_FILE: a CA bundle instead of the system's (an intranet CA)


@dataclass(frozen=True)
class ClientMetadata:
    """A checked client metadata document."""

    client_id: str
    client_name: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    client_uri: str | None
    logo_uri: str | None

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the client_id URL: what the document's content is vouched for by."""
        return origin_of(self.client_id)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def looks_like_metadata_url(client_id: object) -> bool:
    """Whether `client_id` is meant as a metadata document URL (it is then checked by `check_url`)."""
    return isinstance(client_id, str) and client_id.lower().startswith(("https://", "http://"))


def check_url(url: str, policy: FetchPolicy) -> None:
    """Raise MetadataDocumentError unless `url` may name a metadata document."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and policy.allow_http and policy.allow_private):
        raise MetadataDocumentError("a client_id URL must use https")
    if len(url) > MAX_URL_LENGTH:
        raise MetadataDocumentError(f"a client_id URL may have at most {MAX_URL_LENGTH} characters")
    if not parts.hostname or parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise MetadataDocumentError("a client_id URL needs a host and no user name or password")
    if parts.fragment or "#" in url:
        raise MetadataDocumentError("a client_id URL must not have a fragment")
    if not parts.path or parts.path == "/":
        raise MetadataDocumentError("a client_id URL must have a path")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise MetadataDocumentError("a client_id URL must not have . or .. path segments")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise MetadataDocumentError("a client_id URL has a malformed port") from None


def _refused_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified or not address.is_global
    )


def _resolve(host: str, port: int, timeout: float) -> list:
    # getaddrinfo has no timeout of its own: it runs in a thread that is waited for at most `timeout`.
    found: list = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError:
            found.append([])

    worker = threading.Thread(target=lookup, daemon=True)
    worker.start()
    worker.join(timeout)
    if not found:
        raise MetadataDocumentError(f"resolving the client_id host {host} took longer than {timeout:g} s")
    return found[0]


def pick_address(host: str, port: int, policy: FetchPolicy) -> str:
    """The one address to connect to for `host`: every address it resolves to must be allowed."""
    infos = _resolve(host, port, policy.timeout)
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise MetadataDocumentError(f"the client_id host {host} cannot be resolved")
    # All of them, not just the first: a host that also resolves inward is refused.
    if not policy.allow_private and any(_refused_address(a) for a in addresses):
        raise MetadataDocumentError(f"the client_id host {host} resolves to a private or reserved address")
    return str(addresses[0])


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address chosen beforehand, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above, with TLS: SNI and certificate checks use the host name, not the address."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def _ttl(cache_control: str | None, policy: FetchPolicy) -> int:
    if cache_control and _NO_STORE.search(cache_control):
        return 0
    found = _MAX_AGE.search(cache_control or "")
    return min(int(found.group(1)), policy.max_ttl) if found else policy.default_ttl


def fetch_document(url: str, policy: FetchPolicy) -> tuple[bytes, int]:
    """GET `url` within the policy's limits; the body and how long it may be cached."""
    check_url(url, policy)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.monotonic()
    address = pick_address(parts.hostname, port, policy)
    left = max(policy.timeout - (time.monotonic() - started), 0.001)
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=policy.ca_file)
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(parts.hostname, port, address, left, context)
    else:
        conn = _PinnedHTTPConnection(parts.hostname, port, address, left)
    # The socket timeout bounds each wait; this timer bounds the whole fetch
    # (a server that trickles a byte at a time never trips a per-read timeout).
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(left, cut_off)
    timer.daemon = True
    timer.start()
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers={"Accept": "application/json", "User-Agent": "mcp-acl"})
        response = conn.getresponse()
        if response.status != 200:
            # Redirects included: following one would be a second, unchecked fetch.
            raise MetadataDocumentError(f"the client metadata document answered HTTP {response.status}, not 200")
        media_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise MetadataDocumentError("the client metadata document is not application/json")
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > policy.max_bytes:
            raise MetadataDocumentError(f"the client metadata document is larger than {policy.max_bytes} bytes")
        body = b""
        while len(body) <= policy.max_bytes:
            chunk = response.read1(policy.max_bytes + 1 - len(body))
            if not chunk:
                break
            body += chunk
        if len(body) > policy.max_bytes:
            raise MetadataDocumentError(f"the client metadata document is larger than {policy.max_bytes} bytes")
        if expired.is_set():
            raise OSError("cut off")
        return body, _ttl(response.getheader("Cache-Control"), policy)
    except MetadataDocumentError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise MetadataDocumentError(f"the client metadata document took longer than {policy.timeout:g} s") from None
        raise MetadataDocumentError(f"the client metadata document cannot be fetched ({exc.__class__.__name__})") from None
    finally:
        timer.cancel()
        conn.close()


def _optional_url(document: dict, key: str) -> str | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or urlsplit(value).scheme not in ("https", "http"):
        raise MetadataDocumentError(f"{key} in the client metadata document must be a URL")
    return value


def parse_document(url: str, body: bytes) -> ClientMetadata:
    """Check a fetched document against the URL it came from."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MetadataDocumentError("the client metadata document is not valid JSON") from None
    if not isinstance(document, dict):
        raise MetadataDocumentError("the client metadata document must be a JSON object")
    if document.get("client_id") != url:
        raise MetadataDocumentError("client_id in the client metadata document is not exactly its URL")
    method = document.get("token_endpoint_auth_method", PUBLIC)
    if method != PUBLIC:
        # A secret in a public document, or a key we would have to fetch too: neither is supported.
        raise MetadataDocumentError("token_endpoint_auth_method must be 'none' (a public client with PKCE)")
    if "client_secret" in document:
        raise MetadataDocumentError("a client metadata document must not carry a client_secret")
    name = document.get("client_name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise MetadataDocumentError("client_name in the client metadata document must be a short string")
    try:
        uris = tuple(redirects.check_registrable_list(document.get("redirect_uris")))
    except redirects.RedirectUriError as exc:
        raise MetadataDocumentError(f"redirect_uris in the client metadata document: {exc}") from None
    grants = document.get("grant_types", ["authorization_code"])
    if not isinstance(grants, list) or "authorization_code" not in grants or any(g not in CODE_GRANTS for g in grants):
        raise MetadataDocumentError("grant_types in the client metadata document may only be authorization_code and refresh_token")
    return ClientMetadata(
        client_id=url, client_name=name or None, redirect_uris=uris, grant_types=tuple(dict.fromkeys(grants)),
        client_uri=_optional_url(document, "client_uri"), logo_uri=_optional_url(document, "logo_uri"),
    )


class MetadataDocuments:
    """Fetched and checked documents, cached in memory by URL."""

    def __init__(self, policy: FetchPolicy | None = None, clock=time.monotonic) -> None:
        self.policy = policy or FetchPolicy()
        self.clock = clock
        self._cache: dict[str, tuple[float, ClientMetadata]] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> ClientMetadata:
        """The checked document at `url` (cached or fetched now); MetadataDocumentError when unusable."""
        now = self.clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            return cached[1]
        body, ttl = fetch_document(url, self.policy)
        metadata = parse_document(url, body)
        if ttl > 0:
            with self._lock:
                if len(self._cache) >= self.policy.max_cached:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                    if len(self._cache) >= self.policy.max_cached:
                        self._cache.pop(next(iter(self._cache)))
                self._cache[url] = (now + ttl, metadata)
        return metadata
