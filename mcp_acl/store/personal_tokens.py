"""Personal access tokens: named, opaque, long-lived tokens for clients that send a static header.

A personal token is `mcpacl_pat_` followed by 43 base64url characters (256
random bits). It is shown once, when made; the database keeps only its
SHA-256 digest. A fast hash is right here, unlike for passwords: nobody
can guess 256 random bits, so a stolen digest gives nothing to search, and
the lookup on every request stays one indexed read.

Each token also has a row in the access-token ledger (token_ledger.py)
under a `jti` of its own (`pat-…`), written in the same transaction. That
row is the token's revocation: `token revoke NAME`, revoking its user or
client, disabling or removing the user, or removing the client all mark
it, and the gateway's deny-list check (at the door and again in every
admission) refuses it from the next call on, on every replica.

Names are unique: a live token's name cannot be taken again; a revoked or
expired token's name can (the old row is replaced).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import Connection, Engine, delete, insert, select, update

from mcp_acl.store import tables as t
from mcp_acl.store.lookup import Lookup
from mcp_acl.store.token_ledger import IssuedToken, JtiRevocation, record_issued, revoke_jti, utcnow

PREFIX = "mcpacl_pat_"
# The client a personal token acts through when none is named: unregistered
# (so unrestricted: the token carries the user's own grants) unless an
# administrator registers it, restricted, to put one ceiling on all of them.
DEFAULT_CLIENT = "mcp-acl-token"
# The ledger needs an expiry: a token that never expires gets this one.
NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)
# `last_used_at` is written at most this often per token (not on every call).
TOUCH_EVERY = timedelta(minutes=1)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SECRET = re.compile(re.escape(PREFIX) + r"[A-Za-z0-9_-]{43}")

_pt = t.personal_tokens
_at = t.access_tokens
# `_joined()` by digest, for the driver-level Lookup (store/lookup.py), in `_token`'s column names.
_BY_DIGEST_SQL = (
    "SELECT p.name, p.subject, p.client_id, p.jti, p.created_at, p.created_by, p.expires_at, p.last_used_at,"
    " a.revoked_at, a.jti FROM personal_tokens p LEFT OUTER JOIN access_tokens a ON a.jti = p.jti"
    " WHERE p.token_hash = ?"
)
_BY_DIGEST_COLUMNS = (
    "name", "subject", "client_id", "jti", "created_at", "created_by", "expires_at", "last_used_at",
    "revoked_at", "ledger_jti",
)
_TIMES = ("created_at", "expires_at", "last_used_at", "revoked_at")


class PersonalTokenError(Exception):
    """A personal token cannot be made or found; the message says why in one line."""


@dataclass(frozen=True)
class PersonalToken:
    """A personal token as stored (never its secret)."""

    name: str
    subject: str
    client_id: str
    jti: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """`live`, `revoked` or `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "live"

    def as_dict(self, now: datetime) -> dict:
        """For `--json`: every field but the ledger key, times as ISO 8601."""
        def iso(value: datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value is not None else None

        return {
            "name": self.name, "user": self.subject, "client": self.client_id, "state": self.state(now),
            "created": iso(self.created_at), "created_by": self.created_by, "last_used": iso(self.last_used_at),
            "expires": iso(self.expires_at), "revoked": iso(self.revoked_at),
        }


def looks_personal(token: str) -> bool:
    """True when `token` has the personal-token form (a JWT never starts with the prefix)."""
    return token.startswith(PREFIX)


def digest(secret: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def check_name(name: str) -> None:
    """PersonalTokenError unless `name` is 1-64 letters, digits, `.`, `_`, `-` (starting with a letter or digit)."""
    if not _NAME.fullmatch(name) or name.startswith(PREFIX):
        raise PersonalTokenError(
            f"not a token name: {name!r} (1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)"
        )


def create(
    engine: Engine, *, name: str, user: str, client: str | None, expires_at: datetime | None, actor: str | None,
    now: datetime | None = None,
) -> tuple[str, PersonalToken]:
    """Make a token for `user` (through `client`, else DEFAULT_CLIENT); return (its secret, its row).

    Raises PersonalTokenError when the name is taken by a live token, and
    token_ledger.IssueRefused when the user is disabled or gone or a named
    client is not registered (checked under the same locks revocation takes).
    """
    check_name(name)
    now = now or utcnow()
    secret = PREFIX + secrets.token_urlsafe(32)
    jti = "pat-" + secrets.token_urlsafe(16)
    client_id = client or DEFAULT_CLIENT
    with engine.begin() as conn:
        # The ledger row first: it takes SQLite's write lock and refuses a disabled user (token_ledger.py).
        ledger = IssuedToken(jti, user, client_id, now, expires_at or NEVER)
        record_issued(conn, ledger, registered_client=client is not None)
        old = _find(conn, _pt.c.name == name)
        if old is not None:
            if old.state(now) == "live":
                raise PersonalTokenError(f"a live token is already named {name!r}: revoke it first, or choose another name")
            conn.execute(delete(_pt).where(_pt.c.name == name))
        conn.execute(
            insert(_pt).values(
                name=name, token_hash=digest(secret), jti=jti, subject=user, client_id=client_id,
                created_by=actor, created_at=now, expires_at=expires_at,
            )
        )
        row = _find(conn, _pt.c.name == name)
    return secret, row


class SecretLookup:
    """Finding a token by its secret: the one read every request with a personal token makes.

    One statement by the secret's digest, so a token made anew under the
    same name between two reads can never lend its row to an old secret.
    A driver-level Lookup, memoised (keyed by the digest, never the secret)
    inside a StandingConnection block: that memo holds only until any other
    connection, in any process, commits, so a revocation, an expiry date
    changed or a user disabled is read on the next request. The standing
    connection never writes these tables (the last-used write goes
    through a pooled one), as the memo requires.
    """

    def __init__(self, engine: Engine) -> None:
        self._lookup = Lookup(engine, _BY_DIGEST_SQL, "personal tokens could not be read", memo=True)
        dialect = engine.dialect
        # The driver gives SQLite's timestamps as text: the columns' type (UTCDateTime, all four) reads
        # them as the Core path does.
        self._time = _pt.c.created_at.type.dialect_impl(dialect).result_processor(dialect, None)

    def find(self, secret: str) -> PersonalToken | None:
        """The token whose secret this is, or None; StoreError when the database cannot say."""
        if not _SECRET.fullmatch(secret):
            return None
        row = self._lookup.first((digest(secret),))
        if row is None:
            return None
        values = dict(zip(_BY_DIGEST_COLUMNS, row))
        if self._time is not None:
            for name in _TIMES:
                values[name] = self._time(values[name])
        return _token(SimpleNamespace(**values))


def find_by_name(engine: Engine, name: str) -> PersonalToken | None:
    """The token named `name`, or None."""
    with engine.connect() as conn:
        return _find(conn, _pt.c.name == name)


def listing(engine: Engine, user: str | None = None) -> list[PersonalToken]:
    """Every token (of `user`, if given), by name."""
    query = _joined().order_by(_pt.c.name)
    if user is not None:
        query = query.where(_pt.c.subject == user)
    with engine.connect() as conn:
        return [_token(row) for row in conn.execute(query)]


def revoke(engine: Engine, token: PersonalToken, actor: str | None = None) -> JtiRevocation:
    """Revoke `token` through its ledger row: refused from the next call on."""
    return revoke_jti(engine, token.jti, actor)


def touch_due(token: PersonalToken, now: datetime) -> bool:
    """Whether `touch` would write, as far as this copy of the row knows (no database read)."""
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


def touch(engine: Engine, token: PersonalToken, now: datetime) -> bool:
    """Record that `token` was used now, unless that was recorded less than TOUCH_EVERY ago; True if written.

    The condition is in the UPDATE too, so replicas racing on the same
    token write it about once a minute between them.
    """
    if not touch_due(token, now):
        return False
    stale = now - TOUCH_EVERY
    with engine.begin() as conn:
        done = conn.execute(
            update(_pt)
            .where(_pt.c.name == token.name, _pt.c.jti == token.jti)
            .where((_pt.c.last_used_at.is_(None)) | (_pt.c.last_used_at < stale))
            .values(last_used_at=now)
        )
    return done.rowcount > 0


def _joined():
    # A token whose ledger row is missing reads as revoked (see _token): never as live.
    return select(_pt, _at.c.revoked_at, _at.c.jti.label("ledger_jti")).select_from(
        _pt.outerjoin(_at, _at.c.jti == _pt.c.jti)
    )


def _find(conn: Connection, where) -> PersonalToken | None:
    row = conn.execute(_joined().where(where)).first()
    return _token(row) if row is not None else None


def _token(row) -> PersonalToken:
    revoked_at = row.revoked_at
    if row.ledger_jti is None and not (row.expires_at is not None and row.expires_at <= utcnow()):
        # The ledger row goes a day after the token expires; missing before that, fail closed.
        revoked_at = row.created_at
    return PersonalToken(
        name=row.name, subject=row.subject, client_id=row.client_id, jti=row.jti, created_at=row.created_at,
        created_by=row.created_by, expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=revoked_at,
    )
