"""The embedded issuer's signing keys: RFC 7517 JSON Web Keys kept in the database.

https://www.rfc-editor.org/rfc/rfc7517 (JWK), https://www.rfc-editor.org/rfc/rfc7638 (kid)

One key is active and signs. `rotate()` makes a new active key and retires
the old one: its public half stays in the JWKS until `publish_until`, so the
tokens it signed keep verifying until they expire, and its private half is
erased at once (a retired key never signs again). A private key leaves the
database only to sign, inside `sign()`, and is never logged or returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from joserfc import jws
from joserfc.jwk import RSAKey
from sqlalchemy import Connection, Engine, delete, insert, select, update

from mcp_acl.auth.errors import SigningError
from mcp_acl.store import tables as t

ALGORITHM = "RS256"
RSA_BITS = 2048
# The longest lifetime of anything these keys sign; a retired key stays
# published at least this long (see `rotate`).
DEFAULT_MAX_TOKEN_TTL = timedelta(days=1)


def describe_duration(duration: timedelta) -> str:
    """A duration in its largest exact unit.

    Example: timedelta(days=1) -> "1d"; timedelta(minutes=90) -> "90m"
    """
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class PublishedKey:
    """A public key as the JWKS serves it, with the moment it stops verifying (None: active)."""

    kid: str
    jwk: dict
    publish_until: datetime | None


@dataclass(frozen=True)
class KeyInfo:
    """A key as `mcp-acl keys list` shows it (no key material)."""

    kid: str
    alg: str
    state: str  # "active", "published" (retired, still in the JWKS) or "expired"
    created_at: datetime
    retired_at: datetime | None
    publish_until: datetime | None

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl keys list --json` prints."""
        return {
            "kid": self.kid,
            "alg": self.alg,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "retired_at": self.retired_at.isoformat() if self.retired_at else None,
            "publish_until": self.publish_until.isoformat() if self.publish_until else None,
        }


class SigningKeys:
    """The embedded issuer's key store: create, sign, publish, rotate."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_token_ttl: timedelta = DEFAULT_MAX_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.max_token_ttl = max_token_ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"SigningKeys({self.engine.url.render_as_string(hide_password=True)!r})"

    def now(self) -> datetime:
        """The current time (from the injected clock), timezone-aware UTC."""
        return datetime.fromtimestamp(self._clock(), timezone.utc)

    def ensure_active(self) -> str:
        """The kid of the active key, creating an RS256 key pair first if there is none."""
        with self.engine.begin() as conn:
            kid = _active_kid(conn)
            return kid if kid is not None else _insert_new_key(conn, self.now())

    def sign(self, claims: dict, *, typ: str = "at+jwt") -> str:
        """`claims` as a JWS compact token (header alg, kid, typ), signed with the active key."""
        exp = claims.get("exp")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)):
            raise SigningError("refusing to sign claims without a numeric `exp`")
        if exp > self._clock() + self.max_token_ttl.total_seconds():
            raise SigningError(f"refusing to sign a token that outlives the key rotation window ({describe_duration(self.max_token_ttl)})")
        self.ensure_active()
        with self.engine.connect() as conn:
            row = conn.execute(_active_keys_query()).first()
        if row is None:  # rotated away and erased between the two statements
            raise SigningError("the active signing key changed while signing; try again")
        key = RSAKey.import_key(json.loads(row.private_jwk))
        header = {"alg": row.alg, "kid": row.kid, "typ": typ}
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
        return jws.serialize_compact(header, payload, key, algorithms=[row.alg])

    def published(self) -> list[PublishedKey]:
        """The public keys that verify now: the active ones and retired ones still published."""
        now = self.now()
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.signing_keys).order_by(t.signing_keys.c.created_at.desc(), t.signing_keys.c.kid)).all()
        return [
            PublishedKey(r.kid, json.loads(r.public_jwk), r.publish_until)
            for r in rows
            if r.retired_at is None or (r.publish_until is not None and r.publish_until > now)
        ]

    def jwks(self) -> dict:
        """The JWK Set to publish (RFC 7517 §5): public keys only."""
        return {"keys": [dict(k.jwk) for k in self.published()]}

    def rotate(self, keep_old_for: timedelta) -> str:
        """Make a new active key; the old one verifies for `keep_old_for` more, then leaves the JWKS."""
        if keep_old_for < self.max_token_ttl:
            raise SigningError(
                f"keep the old key published at least as long as the longest token lifetime ({describe_duration(self.max_token_ttl)})"
            )
        now = self.now()
        with self.engine.begin() as conn:
            # Keys that are no longer published have nothing left to do.
            conn.execute(delete(t.signing_keys).where(t.signing_keys.c.publish_until <= now))
            conn.execute(
                update(t.signing_keys)
                .where(t.signing_keys.c.retired_at.is_(None))
                # The column is NOT NULL; an empty string marks the erased private half.
                .values(retired_at=now, publish_until=now + keep_old_for, private_jwk="")
            )
            return _insert_new_key(conn, now)

    def inventory(self) -> list[KeyInfo]:
        """Every stored key, newest first, with its state."""
        now = self.now()
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.signing_keys).order_by(t.signing_keys.c.created_at.desc(), t.signing_keys.c.kid)).all()
        return [
            KeyInfo(r.kid, r.alg, _state(r, now), r.created_at, r.retired_at, r.publish_until)
            for r in rows
        ]


def _state(row, now: datetime) -> str:
    if row.retired_at is None:
        return "active"
    return "published" if row.publish_until is not None and row.publish_until > now else "expired"


def _active_keys_query():
    # Two processes may both create a key on first use; the newest one signs
    # and both are published, so either's tokens verify.
    return (
        select(t.signing_keys)
        .where(t.signing_keys.c.retired_at.is_(None))
        .order_by(t.signing_keys.c.created_at.desc(), t.signing_keys.c.kid)
        .limit(1)
    )


def _active_kid(conn: Connection) -> str | None:
    row = conn.execute(_active_keys_query()).first()
    return row.kid if row else None


def _insert_new_key(conn: Connection, now: datetime) -> str:
    key = RSAKey.generate_key(RSA_BITS, auto_kid=False)
    kid = key.thumbprint()  # RFC 7638: the kid names the key itself
    public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": ALGORITHM}
    private = {**key.as_dict(private=True), "kid": kid}
    conn.execute(
        insert(t.signing_keys).values(
            kid=kid,
            alg=ALGORITHM,
            private_jwk=json.dumps(private),
            public_jwk=json.dumps(public),
            created_at=now,
        )
    )
    return kid
