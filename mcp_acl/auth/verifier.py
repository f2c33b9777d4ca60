"""Verifying access tokens: the checks of RFC 9068 §4 over a JWS (RFC 7515) JWT (RFC 7519).

https://www.rfc-editor.org/rfc/rfc9068#section-4

The checks run in this fixed order; the first that fails refuses the token:

  1. size        at most `max_token_bytes`
  2. shape       JWS compact serialization: three base64url parts, a JSON header
  3. alg         in the allow-list (RS256, PS256, ES256, EdDSA, Ed25519): never none or HS*
  4. kid         known to the key source (an unknown kid reloads the set at most once per interval)
  5. signature
  6. typ         at+jwt (an external issuer's configured types may add JWT)
  7. iss         exactly the expected issuer
  8. aud         a string or list that includes this server's resource URL
  9. exp nbf iat with a leeway of at most 60 s
 10. who         the token names a subject or a client
 11. scope       includes the required scope, else 403 insufficient_scope

Tokens that pass are cached by their SHA-256 until they expire, as long as
their key stays in the key set.

A personal access token (its prefix says so, auth/personal.py) is not a
JWT: when the verifier has a `personal` source it is checked there, in SQL
on every request and never cached, and yields the same VerifiedToken.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol

from joserfc import jws
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwt import JWTClaimsRegistry
from mcp.server.auth.provider import AccessToken

from mcp_acl.auth.compact import SIGNATURE_REGISTRY, CompactToken, MalformedToken, normalize_typ, parse_compact
from mcp_acl.auth.errors import AuthConfigError, KeysUnavailable
from mcp_acl.auth.identity import client_id_of, scopes_from_claims
from mcp_acl.auth.jwks import KeySource

logger = logging.getLogger(__name__)

MAX_LEEWAY = 60
DEFAULT_MAX_TOKEN_BYTES = 8192
# (claim, message when it fails), in the order they are checked.
_CLAIM_CHECKS = (
    ("iss", "the token was issued by another issuer"),
    ("aud", "the token is not meant for this server (aud)"),
    ("exp", "the token's expiry (exp) is not valid"),
    ("nbf", "the token is not valid yet (nbf)"),
    ("iat", "the token was issued in the future (iat)"),
)
_ESSENTIAL = ("iss", "aud", "exp", "iat")


class TokenRejected(Exception):
    """A refused token: `status` 401/403/400, an RFC 6750 `error`, a `description` safe to show."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        # True when the signature verified (expired, wrong audience, missing
        # scope…): its names are the issuer's, not whatever a forger wrote.
        self.signed = False


def invalid_token(description: str) -> TokenRejected:
    """A 401 invalid_token refusal."""
    return TokenRejected(401, "invalid_token", description)


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified token says, ready for identity mapping."""

    claims: dict
    issuer: str
    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    expires_at: datetime
    # What users of the verifier derive from this token, made once: the
    # verifier hands back this same object while it caches the token, so
    # the memo lives and is evicted with the cache entry.
    memo: dict = field(default_factory=dict, compare=False, repr=False)


class PersonalTokenSource(Protocol):
    """Where tokens that are not JWTs are verified (auth/personal.py)."""

    def recognises(self, token: str) -> bool: ...

    async def verify(self, token: str) -> VerifiedToken: ...


class AccessTokenVerifier:
    """Verifies JWT access tokens of one issuer for one resource; also an SDK TokenVerifier."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySource,
        required_scope: str = "mcp",
        token_types: Collection[str] = ("at+jwt",),
        leeway: int = 30,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        personal: PersonalTokenSource | None = None,
    ) -> None:
        if not 0 <= leeway <= MAX_LEEWAY:
            raise AuthConfigError(f"the clock leeway must be between 0 and {MAX_LEEWAY} seconds, not {leeway}")
        types = frozenset(normalize_typ(t) for t in token_types)
        if not types:
            raise AuthConfigError("at least one token type (typ) must be accepted")
        self.issuer = issuer
        self.audience = audience
        self.keys = keys
        self.required_scope = required_scope
        self.token_types = types
        self.leeway = leeway
        self.max_token_bytes = max_token_bytes
        self.cache_size = cache_size
        self._clock = clock
        self.personal = personal
        # SHA-256 of the token -> (what it said, cached until, its kid)
        self._cache: OrderedDict[bytes, tuple[VerifiedToken, float, str]] = OrderedDict()

    async def verify(self, token: str) -> VerifiedToken:
        """The verified token, or TokenRejected saying why not (never containing the token)."""
        if len(token) > self.max_token_bytes:  # 1. size
            raise invalid_token("the token is too large")
        if self.personal is not None and self.personal.recognises(token):
            return await self.personal.verify(token)
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        now = self._clock()
        cached = await self._cached(digest, now)
        if cached is not None:
            return cached
        try:
            compact = parse_compact(token)  # 2. shape, 3. alg
        except MalformedToken as exc:
            raise invalid_token(str(exc)) from None
        valid_until = await self._check_signature(compact)  # 4. kid, 5. signature
        try:
            if normalize_typ(compact.header.get("typ")) not in self.token_types:  # 6. typ
                raise invalid_token("the token is not an access token (typ)")
            try:
                claims = compact.claims()
            except MalformedToken as exc:
                raise invalid_token(str(exc)) from None
            self._check_claims(claims, now)  # 7-9. iss aud exp nbf iat
            verified = self._verified(claims)  # 10. who, 11. scope
        except TokenRejected as refusal:
            refusal.signed = True
            raise
        expires = min(float(claims["exp"]), valid_until if valid_until is not None else float("inf"))
        self._remember(digest, verified, expires, compact.header["kid"])
        return verified

    async def verify_token(self, token: str) -> AccessToken | None:
        """The mcp SDK TokenVerifier protocol: an AccessToken, or None when refused."""
        try:
            verified = await self.verify(token)
        except TokenRejected:
            return None
        return self.access_token(token, verified)

    def access_token(self, token: str, verified: VerifiedToken) -> AccessToken:
        """The SDK's AccessToken for a verified token (claims, subject, client id filled)."""
        return AccessToken(
            token=token,
            # The SDK wants a string; a token with a subject but no client has none.
            client_id=verified.client_id or "",
            scopes=sorted(verified.scopes),
            expires_at=int(verified.expires_at.timestamp()),
            resource=self.audience,
            subject=verified.subject,
            claims=verified.claims,
        )

    async def _check_signature(self, compact: CompactToken) -> float | None:
        kid = compact.header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_token("the token names no signing key (kid)")
        try:
            key = await self.keys.key(kid)
        except KeysUnavailable:
            raise invalid_token("the issuer's signing keys are unavailable; try again later") from None
        if key is None:
            raise invalid_token("the token was signed by an unknown key")
        if key.valid_until is not None and self._clock() >= key.valid_until:
            raise invalid_token("the token was signed by a key that is no longer published")
        if key.alg is not None and key.alg != compact.alg:
            raise invalid_token("the token's algorithm does not match its key")
        try:
            jws.deserialize_compact(compact.text, key.key, registry=SIGNATURE_REGISTRY)
        except (JoseError, ValueError, TypeError):
            raise invalid_token("the token's signature is invalid") from None
        return key.valid_until

    def _check_claims(self, claims: dict, now: float) -> None:
        registry = JWTClaimsRegistry(
            now=int(now),
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
        )
        for name, message in _CLAIM_CHECKS:
            value = claims.get(name)
            if value is None:
                if name in _ESSENTIAL:
                    raise invalid_token(f"the token has no {name} claim")
                continue
            try:
                getattr(registry, f"validate_{name}")(value)
            except ExpiredTokenError:
                raise invalid_token("the token has expired") from None
            except JoseError:
                raise invalid_token(message) from None
        try:
            registry.validate(claims)  # the remaining registered claims' types (sub, jti)
        except JoseError:
            raise invalid_token("the token's claims are malformed") from None

    def _verified(self, claims: dict) -> VerifiedToken:
        subject = claims.get("sub")
        client_id = client_id_of(claims)
        if client_id is not None and not isinstance(client_id, str):
            raise invalid_token("the token's client_id is malformed")
        if not subject and not client_id:
            raise invalid_token("the token names neither a subject nor a client")
        scopes = scopes_from_claims(claims)
        if self.required_scope not in scopes:
            raise TokenRejected(403, "insufficient_scope", f"the token lacks the scope {self.required_scope}")
        try:
            expires_at = datetime.fromtimestamp(float(claims["exp"]), timezone.utc)
        except (OverflowError, OSError, ValueError):
            # Signed and in the future, but past what a date can hold.
            raise invalid_token("the token's expiry (exp) is not valid") from None
        return VerifiedToken(
            claims=claims,
            issuer=claims["iss"],
            subject=subject or None,
            client_id=client_id or None,
            scopes=scopes,
            expires_at=expires_at,
        )

    async def _cached(self, digest: bytes, now: float) -> VerifiedToken | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        verified, until, kid = entry
        if now < until:
            # The key must still be published: a key removed from the set
            # takes its cached tokens with it (an unavailable set refuses them).
            try:
                key = await self.keys.key(kid)
            except KeysUnavailable:
                key = None
            if key is not None and (key.valid_until is None or now < key.valid_until):
                if digest in self._cache:  # another task may have evicted it during the await
                    self._cache.move_to_end(digest)
                return verified
        self._cache.pop(digest, None)
        return None

    def _remember(self, digest: bytes, verified: VerifiedToken, until: float, kid: str) -> None:
        self._cache[digest] = (verified, until, kid)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
