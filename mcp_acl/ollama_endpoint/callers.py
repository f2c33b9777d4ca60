"""Who a chat on the Ollama endpoint is for: the token's identity, or a user a trusted front-end names.

A bearer token alone: the chat runs as the token's identity, exactly as on
/mcp. A front-end such as Open WebUI signs its users in itself and talks to
Ollama with one credential of its own; configured with
`--ollama-trusted-client open-webui --ollama-user-header X-OpenWebUI-User-Email`,
the header names the user, and the chat runs as that user acting through
the front-end client. The header is honoured only when all hold:

- the token is the trusted client's own (client credentials or a personal
  token of the client: no user in it). A user's token through that same
  client may not name anyone else;
- the client is registered and restricted, so its own grants cap the user
  (the delegation ceiling): the front-end can never act beyond what both
  the user and the client allow;
- the named user exists and is not disabled.

A request that names a user in the header and fails any of these is
refused (403), never served as the token's own identity: a caller that
believes it acts for a user must not silently act as someone else.
"""

from __future__ import annotations

from dataclasses import replace

import anyio.to_thread
from sqlalchemy import Engine

from mcp_acl.gateway.invocation import PolicySource
from mcp_acl.policy import CompiledPolicy, Identity
from mcp_acl.store import PolicyAdmin
from mcp_acl.store.admin import AdminError


class CallerRefused(Exception):
    """The request may not be served for the caller it names; `status` and the sentence go back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FrontEnds:
    """Turns a verified identity and the request's headers into the identity a chat runs as."""

    def __init__(self, engine: Engine, trusted_client: str | None, user_header: str | None) -> None:
        self.engine = engine
        self.trusted_client = trusted_client
        self.user_header = user_header.lower() if user_header else None

    def named_user(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The user the request's front-end header names, if it carries one (None without the feature)."""
        if self.user_header is None:
            return None
        wanted = self.user_header.encode("latin-1")
        values = [v for k, v in headers if k.lower() == wanted]
        if not values:
            return None
        if len(values) > 1:
            raise CallerRefused(400, f"send the {self.user_header} header at most once")
        return values[0].decode("utf-8", "replace").strip()

    async def resolve(self, token_identity: Identity, headers: list[tuple[bytes, bytes]], policies: PolicySource) -> Identity:
        """The identity to decide for; raises CallerRefused."""
        user = self.named_user(headers)
        if user is None:
            return token_identity
        if token_identity.client_id != self.trusted_client or not token_identity.is_service:
            raise CallerRefused(403, f"only the trusted front-end's own token may name a user in {self.user_header}")
        if not user:
            raise CallerRefused(400, f"the {self.user_header} header is empty")
        try:
            policy, known = await anyio.to_thread.run_sync(self._look_up, policies, user)
        except Exception as exc:
            raise CallerRefused(503, "the access policy could not be read; try again shortly") from exc
        if not policy.is_restricted(self.trusted_client):
            raise CallerRefused(403, (
                f"the front-end client {self.trusted_client} is not restricted, so it would set no ceiling: "
                f"register it with `mcp-acl client add {self.trusted_client} --restricted` and grant it what its users may use"))
        if not known:
            raise CallerRefused(403, f"no user named {user!r} is known to mcp-acl")
        if user in policy.disabled_users:
            raise CallerRefused(403, f"the user {user!r} is disabled")
        # Stored memberships give the user's roles; the front-end token's own role claim is not the user's.
        return replace(token_identity, subject=user, roles=frozenset())

    def _look_up(self, policies: PolicySource, user: str) -> tuple[CompiledPolicy, bool]:
        # Whether the user is stored (the admin's own check), and the policy that says whether it is disabled.
        try:
            PolicyAdmin(self.engine).require_principal(f"user:{user}")
        except AdminError:
            return policies.current(), False
        return policies.current(), True
