"""Whether this server takes Client ID Metadata Documents at all, and from
which hosts: `MCP_ACL_CIMD=off` and `MCP_ACL_CIMD_ALLOWED_HOSTS` (docs/oauth.md).

Checked before anything is fetched or stored, and for every use of an https
client_id, not only the first: a client that signed in while documents
were accepted (a `clients` row registered_via "cimd") is refused at
/authorize and /token once they are not, as a new one would be. A client an
administrator registered with an https id (`mcp-acl client add`) is not a
document client and is not affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp_acl.host_patterns import host_allowed
from mcp_acl.oauth.cimd import MetadataDocumentError


@dataclass(frozen=True)
class DocumentAdmission:
    """The administrator's limits on metadata document clients."""

    enabled: bool = True  # MCP_ACL_CIMD
    allowed_hosts: tuple[str, ...] = ()  # MCP_ACL_CIMD_ALLOWED_HOSTS; empty: any host

    def check(self, client_id: str) -> None:
        """Raise MetadataDocumentError (said on the error page) unless `client_id`'s document may be used."""
        if not self.enabled:
            raise MetadataDocumentError(
                "this server does not accept clients identified by a metadata document URL; "
                "ask its administrator to register the app"
            )
        if self.allowed_hosts:
            host = urlsplit(client_id).hostname
            if not host_allowed(host, self.allowed_hosts):
                raise MetadataDocumentError(f"this server does not accept client metadata documents from {host or 'that URL'}")
