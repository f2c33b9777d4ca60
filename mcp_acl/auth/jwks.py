"""Where verification keys come from: JWK Sets (RFC 7517 §5), embedded or fetched.

https://www.rfc-editor.org/rfc/rfc7517#section-5

Both sources cache the key set: it is reloaded after `max_age`, and a token
naming an unknown `kid` triggers at most one reload per `refetch_interval`
(so a flood of made-up kids cannot flood the issuer or the database). A
source that cannot load its keys raises KeysUnavailable: the token is
refused, never waved through.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx2
from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key
from sqlalchemy.exc import SQLAlchemyError

from mcp_acl.auth.discovery import discover_jwks_uri, fetch_json
from mcp_acl.auth.errors import KeysUnavailable
from mcp_acl.auth.keys import SigningKeys

logger = logging.getLogger(__name__)

# Symmetric ("oct") keys are never taken from a key set: a public JWKS
# holding a shared secret would let anyone forge tokens.
ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


@dataclass(frozen=True)
class VerificationKey:
    """A public key from a key set; `alg` as the JWK pins it, `valid_until` when it stops verifying."""

    key: Key
    alg: str | None = None
    valid_until: float | None = None  # epoch seconds; None: while it is in the set


class KeySource(Protocol):
    """Hands out verification keys by `kid`."""

    async def key(self, kid: str) -> VerificationKey | None:
        """The key named `kid`, None if unknown (after the allowed refetch); KeysUnavailable if unloadable."""
        ...


def parse_jwk_set(document: object) -> dict[str, VerificationKey]:
    """The usable signature keys of a JWK Set by kid; entries that are not are skipped.

    Example: {"keys": [{"kty": "RSA", "kid": "k1", "n": "…", "e": "AQAB"}]} -> {"k1": VerificationKey(…)}
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailable("the key set is not a JWK Set (no `keys` list)")
    keys: dict[str, VerificationKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            continue
        kid, kty, use, alg = entry.get("kid"), entry.get("kty"), entry.get("use"), entry.get("alg")
        if not isinstance(kid, str) or kty not in ASYMMETRIC_KEY_TYPES or use not in (None, "sig"):
            continue
        if kid in keys:
            # Two keys under one kid: the first one stays; the second is ambiguous.
            logger.warning("key set repeats kid %s; keeping the first", kid)
            continue
        try:
            key = import_key({k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")})
        except (JoseError, ValueError, TypeError):
            logger.warning("key set entry %s could not be imported; skipped", kid)
            continue
        keys[kid] = VerificationKey(key, alg if isinstance(alg, str) else None)
    return keys


class KeyLoader(Protocol):
    """Loads a whole key set once; CachedKeySet decides when."""

    async def load(self) -> dict[str, VerificationKey]:
        """The keys by kid; KeysUnavailable when they cannot be had."""
        ...


class CachedKeySet:
    """A KeySource over a KeyLoader: cached for `max_age`, refetched at most once per interval."""

    def __init__(
        self,
        loader: KeyLoader,
        *,
        max_age: float,
        refetch_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.loader = loader
        self.max_age = max_age
        self.refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, VerificationKey] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None  # last load of any kind (throttles failures)
        self._refetched_at: float | None = None  # last load for an unknown kid
        self._failure: str | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> VerificationKey | None:
        """The key named `kid`, reloading the set when stale or (rate-limited) when the kid is unknown."""
        now = self._clock()
        stale = self._loaded_at is None or now - self._loaded_at >= self.max_age
        if stale:
            await self._refresh(now, self._generation)
        found = self._keys.get(kid)
        may_refetch = self._refetched_at is None or now - self._refetched_at >= self.refetch_interval
        if found is None and not stale and may_refetch:
            # Claimed before the await, so concurrent unknown kids share one refetch.
            self._refetched_at = now
            await self._refresh(now, self._generation)
            found = self._keys.get(kid)
        return found

    async def _refresh(self, now: float, seen_generation: int) -> None:
        async with self._lock:
            # Another task reloaded while this one waited: use its result.
            if self._generation == seen_generation:
                throttled = (
                    self._failure is not None
                    and self._attempted_at is not None
                    and now - self._attempted_at < self.refetch_interval
                )
                if not throttled:
                    self._attempted_at = now
                    self._generation += 1
                    try:
                        self._keys = await self.loader.load()
                        self._loaded_at, self._failure = now, None
                    except KeysUnavailable as exc:
                        self._failure = str(exc)
                        logger.warning("verification keys unavailable: %s", exc)
            if self._failure is not None:
                raise KeysUnavailable(self._failure)


class EmbeddedKeyLoader:
    """The embedded issuer's keys, read from the database (no HTTP)."""

    def __init__(self, keys: SigningKeys) -> None:
        self.signing_keys = keys

    async def load(self) -> dict[str, VerificationKey]:
        """The published keys, each valid until its `publish_until`."""
        try:
            published = await asyncio.to_thread(self.signing_keys.published)
        except SQLAlchemyError as exc:
            raise KeysUnavailable(f"the signing keys could not be read: {exc.__class__.__name__}") from exc
        loaded = parse_jwk_set({"keys": [k.jwk for k in published]})
        until = {k.kid: k.publish_until.timestamp() for k in published if k.publish_until is not None}
        return {kid: VerificationKey(found.key, found.alg, until.get(kid)) for kid, found in loaded.items()}


class RemoteKeyLoader:
    """An external issuer's keys, fetched over HTTP from `jwks_url` or found by discovery."""

    def __init__(self, issuer: str, jwks_url: str | None = None, *, timeout: float = 5) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.timeout = timeout

    async def load(self) -> dict[str, VerificationKey]:
        """The issuer's signature keys; discovery runs on the first load when no URL was given."""
        async with httpx2.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
            if self.jwks_url is None:
                self.jwks_url = await discover_jwks_uri(client, self.issuer)
            document = await fetch_json(client, self.jwks_url)
        if document is None:
            raise KeysUnavailable(f"the key set at {self.jwks_url} could not be fetched")
        keys = parse_jwk_set(document)
        if not keys:
            raise KeysUnavailable(f"the key set at {self.jwks_url} holds no usable signature key")
        return keys


def embedded_key_set(
    keys: SigningKeys, *, max_age: float = 60, refetch_interval: float = 5, clock: Callable[[], float] = time.time
) -> CachedKeySet:
    """The key source of the embedded issuer."""
    return CachedKeySet(EmbeddedKeyLoader(keys), max_age=max_age, refetch_interval=refetch_interval, clock=clock)


def remote_key_set(
    issuer: str,
    jwks_url: str | None = None,
    *,
    max_age: float = 300,
    refetch_interval: float = 30,
    timeout: float = 5,
    clock: Callable[[], float] = time.time,
) -> CachedKeySet:
    """The key source of an external issuer: `jwks_url`, or its discovery document's `jwks_uri`."""
    loader = RemoteKeyLoader(issuer, jwks_url, timeout=timeout)
    return CachedKeySet(loader, max_age=max_age, refetch_interval=refetch_interval, clock=clock)
