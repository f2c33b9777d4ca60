"""Narrowed tokens by OAuth 2.0 Token Exchange (RFC 8693) with Rich Authorization Requests (RFC 9396).

https://www.rfc-editor.org/rfc/rfc8693, https://www.rfc-editor.org/rfc/rfc9396

A client holding an access token this issuer minted asks, at the token
endpoint, for a token that may use only part of what that one may:

    grant_type=urn:ietf:params:oauth:grant-type:token-exchange
    subject_token=<its access token>
    subject_token_type=urn:ietf:params:oauth:token-type:access_token
    authorization_details=[{"type": "mcp-acl-narrowing",
                            "targets": ["tool:files.read"],
                            "condition": "args.path.startsWith(\\"reports/q3\\")"}]

The subject token is verified as the gateway verifies it (signature,
issuer, audience, expiry) and must be in the token ledger and not revoked;
the client must authenticate and be the one the subject token was issued
to (another client could carry a wider ceiling). The new token keeps the
subject token's user, client and scope (or less), carries the narrowing in
its `authorization_details` claim, ends no later than the subject token,
comes without a refresh token, and is recorded in the ledger under the same
sign-in (refresh-token family) with the subject token's jti as its parent:
revoking the user, the client, the sign-in or the subject token itself (by
its jti, `mcp-acl token revoke`) revokes it too (store/token_ledger.py).
The narrowing only ever intersects (policy/narrowing.py), so asking for
more than the user has gains nothing; what is malformed,
names an unknown type or has a condition that does not check is refused.
A token that is already narrowed is not exchanged again: exchange the
token it came from.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, OAuth2Error, grants
from authlib.oauth2.rfc6749 import list_to_scope, scope_to_list

from mcp_acl.auth.identity import is_service_token
from mcp_acl.auth.jwks import embedded_key_set
from mcp_acl.auth.tokens import ACCESS_TOKEN_TYPE
from mcp_acl.auth.verifier import AccessTokenVerifier, TokenRejected, VerifiedToken
from mcp_acl.oauth.clients import AUTH_METHODS
from mcp_acl.oauth.resource import InvalidTargetError, requested_resource
from mcp_acl.policy import PolicyError, check_condition
from mcp_acl.policy.narrowing import NARROWING_TYPE, Narrowing, parse_details
from mcp_acl.store.token_ledger import ledger_entry

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_URN = "urn:ietf:params:oauth:token-type:access_token"
AUTHORIZATION_DETAILS_TYPES = [NARROWING_TYPE]
# A request's details are a small JSON array; anything larger is refused before parsing.
MAX_DETAILS_CHARS = 16384
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class InvalidAuthorizationDetailsError(OAuth2Error):
    """RFC 9396 §5: the authorization details are malformed or of an unknown type."""

    error = "invalid_authorization_details"
    status_code = 400

    def __init__(self, description: str) -> None:
        # RFC 6749 §5.2 allows no double quote or backslash in error_description,
        # and conditions quote strings: shown with single quotes instead.
        shown = description.replace('"', "'").replace("\\", "/")
        super().__init__(_NOT_DESCRIPTION.sub("?", shown))


@dataclass(frozen=True)
class Exchange:
    """What a valid exchange request resolved to."""

    parent: VerifiedToken
    family_id: str | None
    narrowing: Narrowing
    scope: str
    resource: str
    ttl: timedelta


def _one(payload, name: str, required: bool = False) -> str | None:
    values = payload.datalist.get(name, [])
    if len(values) > 1:
        raise InvalidRequestError(f"Send '{name}' once.")
    if required and not values:
        raise InvalidRequestError(f"Missing '{name}'.")
    return values[0] if values else None


def requested_narrowing(text: str | None) -> Narrowing:
    """The narrowing the `authorization_details` parameter asks for; InvalidAuthorizationDetailsError if it is not one."""
    if text is None:
        raise InvalidAuthorizationDetailsError(
            f"Missing 'authorization_details': a JSON array of {NARROWING_TYPE!r} objects naming what the new token may use."
        )
    if len(text) > MAX_DETAILS_CHARS:
        raise InvalidAuthorizationDetailsError("The authorization_details are too large.")
    try:
        details = json.loads(text)
    except ValueError:
        raise InvalidAuthorizationDetailsError("The authorization_details are not valid JSON.") from None
    try:
        # Conditions are type-checked as a grant's are: a typo fails here, not on every call.
        return parse_details(details, check=check_condition)
    except PolicyError as exc:
        raise InvalidAuthorizationDetailsError(str(exc)) from None


def verify_subject_token(server, token: str) -> VerifiedToken:
    """The subject token, verified as the gateway would; InvalidGrantError otherwise."""
    options = server.options
    verifier = AccessTokenVerifier(
        issuer=options.issuer, audience=options.resource, keys=embedded_key_set(server.tokens.keys),
        required_scope=options.scope, token_types=(ACCESS_TOKEN_TYPE,), leeway=0,
    )
    try:
        # The token endpoint runs in a worker thread, with no event loop of its own.
        return asyncio.run(verifier.verify(token))
    except TokenRejected as refusal:
        raise InvalidGrantError(f"The subject token is not valid: {refusal.description}.") from None


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8693 token exchange, for a narrowed token only."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        self.request.client = client
        payload = self.request.payload
        if _one(payload, "actor_token") is not None or _one(payload, "actor_token_type") is not None:
            raise InvalidRequestError("Actor tokens (delegation to another party) are not supported: only narrowing.")
        for name in ("subject_token_type", "requested_token_type"):
            kind = _one(payload, name, required=name == "subject_token_type")
            if kind is not None and kind != ACCESS_TOKEN_URN:
                raise InvalidRequestError(f"'{name}' must be {ACCESS_TOKEN_URN}.")
        subject_token = _one(payload, "subject_token", required=True)
        audience = _one(payload, "audience")
        if audience is not None and audience != self.server.options.resource:
            raise InvalidTargetError(f"This server issues tokens only for the resource {self.server.options.resource}.")
        resource = requested_resource(self.request, self.server.options.resource)
        narrowing = requested_narrowing(_one(payload, "authorization_details"))
        parent = verify_subject_token(self.server, subject_token)
        if parent.client_id != client.get_client_id():
            raise InvalidGrantError("The subject token was issued to another client.")
        if "authorization_details" in parent.claims:
            raise InvalidGrantError("The subject token is already narrowed: exchange the token it was narrowed from.")
        scope = self._scope(parent, _one(payload, "scope"))
        family_id = self._live_family(parent)
        remaining = parent.expires_at - datetime.now(timezone.utc)
        if remaining < timedelta(seconds=1):
            raise InvalidGrantError("The subject token has expired.")
        self.exchange = Exchange(parent, family_id, narrowing, scope, resource, timedelta(seconds=int(remaining.total_seconds())))

    @staticmethod
    def _scope(parent: VerifiedToken, asked: str | None) -> str:
        held = [s for s in scope_to_list(parent.claims.get("scope") or "")]
        if not asked:
            return list_to_scope(held)
        wanted = list(dict.fromkeys(scope_to_list(asked)))
        if any(s not in held for s in wanted):
            raise InvalidScopeError("A narrowed token may ask only for scopes its subject token has.")
        return list_to_scope(wanted)

    def _live_family(self, parent: VerifiedToken) -> str | None:
        # Only tokens this issuer recorded (and has not revoked) are exchanged.
        with self.server.engine.connect() as conn:
            row = ledger_entry(conn, parent.claims.get("jti") or "")
        if row is None:
            raise InvalidGrantError("The subject token is not one this issuer has on record.")
        if row.revoked_at is not None:
            raise InvalidGrantError("The subject token was revoked.")
        return row.family_id

    def create_token_response(self):
        found = self.exchange
        parent = found.parent
        details = found.narrowing.as_details()
        token = self.server.tokens.issue(
            client=self.client, user_name=None if is_service_token(parent.claims) else parent.subject,
            scope=found.scope, resource=found.resource, family_id=found.family_id, refresh=False,
            ttl=found.ttl, extra_claims={"authorization_details": details},
            # The link to the parent is kept in the ledger, not as a claim: the gateway's
            # per-request deny-list lookup stays one key, and revoking the parent revokes this row.
            parent_jti=parent.claims["jti"],
        )
        token["issued_token_type"] = ACCESS_TOKEN_URN
        token["authorization_details"] = details
        return 200, token, self.TOKEN_RESPONSE_HEADER
