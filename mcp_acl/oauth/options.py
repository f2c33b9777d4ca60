"""What the embedded authorization server is configured with."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from mcp_acl.auth.errors import AuthConfigError
from mcp_acl.oauth.cimd import FetchPolicy
from mcp_acl.oauth.cimd_admission import DocumentAdmission


class OAuthConfigError(AuthConfigError):
    """An issuer or resource URL the embedded server cannot run with (reported like any auth setting)."""


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerOptions:
    """URLs, scope and lifetimes of the embedded issuer."""

    issuer: str  # e.g. "http://127.0.0.1:8000" (no trailing slash, no query)
    resource: str  # the MCP endpoint tokens are for, e.g. "http://127.0.0.1:8000/mcp"
    scope: str = "mcp"
    access_token_ttl: timedelta = timedelta(hours=1)
    refresh_token_ttl: timedelta = timedelta(days=30)
    code_ttl: timedelta = timedelta(minutes=5)
    sign_in_ttl: timedelta = timedelta(minutes=10)
    metadata_documents: FetchPolicy = FetchPolicy()  # how client_id URLs are fetched (oauth/cimd.py)
    document_admission: DocumentAdmission = DocumentAdmission()  # whether, and from which hosts (cimd_admission.py)
    registration: bool = True  # dynamic client registration at /register (MCP_ACL_REGISTRATION)

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise OAuthConfigError(f"the issuer URL {self.issuer!r} must be http(s)://host[:port][/path] with no query")
        if self.issuer.endswith("/"):
            raise OAuthConfigError(f"the issuer URL {self.issuer!r} must not end with a slash")
        # OAuth needs TLS (RFC 6749 §3.1); plain http only where nothing leaves the machine.
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise OAuthConfigError(
                f"the embedded issuer {self.issuer} needs https unless it is on loopback: "
                "serve mcp-acl behind TLS and set MCP_ACL_RESOURCE_URL to its https URL"
            )

    @property
    def origin(self) -> str:
        """scheme://host[:port] of the issuer."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path(self) -> str:
        """The issuer's path prefix ("" for an issuer at the root of its host)."""
        return urlsplit(self.issuer).path.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies get the Secure flag (the issuer is https)."""
        return self.issuer.startswith("https://")

    def url(self, path: str) -> str:
        """The absolute URL of one of the issuer's endpoints, e.g. url("/token")."""
        return self.issuer + path
