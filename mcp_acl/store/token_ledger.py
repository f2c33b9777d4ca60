"""Revocable access tokens: the ledger of issued tokens and the deny-list the gateway reads.

Every access token the embedded issuer mints is recorded here by its `jti`
(with its user, client, refresh-token family and expiry) before it is
handed out. Revoking sets `revoked_at`: on one jti, or on every live token
of a user, a client or a refresh-token family, found through the ledger.
The gateway refuses a token whose jti has `revoked_at` set: one lookup by
primary key (REVOKED_SQL). A jti the ledger never saw (an external
issuer's token) gets a row of its own when revoked. Rows go a day after
the token expires.

Exchanged tokens. A token minted by token exchange (RFC 8693: a narrowed
token, oauth/exchange.py) records the jti of the token it came from in
`parent_jti`. Revoking a jti revokes, in the same transaction, every live
token exchanged from it, and from those in turn: the link lives in the
ledger, not in the token, so the gateway's check stays the one
primary-key lookup per request and knows nothing of parents, and every
replica sees the cascade the moment it commits. (A signed claim naming the
parent would need a second deny-list key on every request.)

Why a ledger and not cut-offs by issue time: cut-offs compare an `iat`
stamped by one machine's clock with a revocation time stamped by another's,
and would also refuse tokens issued in the same second after it. The
ledger costs one insert per token minted and is exact.

Issuing and revoking at once. Both touch the same rows, in the same order
(the user, the client, the family's code, the family's refresh tokens, the
token an exchanged one came from):
issuing first inserts its ledger row (and the next refresh token), then
reads those rows `FOR SHARE` and refuses if any says revoked, in one
transaction; revoking first updates them (taking their locks), and only
then sweeps the ledger, in a later statement that sees every token whose
issuing committed meanwhile. Whichever comes second sees the other's work,
so a revoked user, client, family or parent token never gains a live
token, not even one whose refresh or exchange was claimed an instant before
the revocation. On SQLite the issuing transaction's first insert takes the
database write lock, which serialises the two the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, delete, insert, select, update

from mcp_acl.store import tables as t

# The deny-list lookup the gateway makes on every request (placeholders `?`, see store.lookup.Lookup).
REVOKED_SQL = "SELECT 1 FROM access_tokens WHERE jti = ? AND revoked_at IS NOT NULL"
# Ledger rows outlive their token by this much, then go as new tokens are recorded.
KEEP_EXPIRED = timedelta(days=1)
# A revoked jti the ledger never saw (an external issuer's): its expiry is
# unknown, so its row stays this long (longer than any sane access token).
UNKNOWN_TOKEN_KEEP = timedelta(days=30)

_at = t.access_tokens
_codes = t.oauth_codes
_refresh = t.oauth_refresh_tokens


class IssueRefused(Exception):
    """The token may not go out: its user, client or family was revoked or removed meanwhile."""


@dataclass(frozen=True)
class IssuedToken:
    """What the ledger keeps of a minted token."""

    jti: str
    subject: str | None  # the user; None for a service token
    client_id: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class JtiRevocation:
    """What `revoke_jti` found and did."""

    jti: str
    known: bool  # minted by the embedded issuer (in the ledger)
    already: bool  # it was revoked before
    subject: str | None
    client_id: str | None
    expires_at: datetime
    exchanged: int = 0  # live tokens exchanged from it (and from those) revoked with it


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def record_issued(
    conn: Connection, token: IssuedToken, *, family_id: str | None = None, registered_client: bool = True,
) -> None:
    """Record `token` and refuse it (IssueRefused) if its party is revoked; in the caller's transaction.

    `registered_client`: the client must still be registered (False only
    for the command line's default client, which is never registered).
    """
    insert_issued(conn, token, family_id=family_id)
    refuse_if_revoked(conn, user=token.subject, client=token.client_id if registered_client else None, family=family_id)


def insert_issued(
    conn: Connection, token: IssuedToken, *, family_id: str | None = None, parent_jti: str | None = None,
) -> None:
    """Insert the ledger row (first, so on SQLite the transaction holds the write lock from here on).

    `parent_jti`: the token it was exchanged from (revoking that one revokes this one).
    """
    conn.execute(
        insert(_at).values(
            jti=token.jti, subject=token.subject, client_id=token.client_id, family_id=family_id,
            issued_at=token.issued_at, expires_at=token.expires_at, parent_jti=parent_jti,
        )
    )
    conn.execute(delete(_at).where(_at.c.expires_at < token.issued_at - KEEP_EXPIRED))


def refuse_if_revoked(
    conn: Connection, *, user: str | None, client: str | None, family: str | None, parent: str | None = None,
) -> None:
    """Raise IssueRefused if the user is disabled or gone, the client gone, the family or the parent token revoked.

    Reads with `FOR SHARE` (ignored by SQLite), after this transaction's
    inserts: see the module docstring for why this order.
    """
    if user is not None:
        row = conn.execute(select(t.users.c.disabled).where(t.users.c.name == user).with_for_update(read=True)).first()
        if row is None or row.disabled:
            raise IssueRefused(f"user {user!r} is disabled or gone")
    if client is not None:
        found = conn.execute(
            select(t.clients.c.client_id).where(t.clients.c.client_id == client).with_for_update(read=True)
        ).first()
        if found is None:
            raise IssueRefused(f"client {client!r} is no longer registered")
    if family is not None:
        marks = [
            *conn.execute(select(_codes.c.revoked_at).where(_codes.c.family_id == family).with_for_update(read=True)),
            *conn.execute(select(_refresh.c.revoked_at).where(_refresh.c.family_id == family).with_for_update(read=True)),
        ]
        if any(mark.revoked_at is not None for mark in marks):
            raise IssueRefused("the grant was revoked")
    if parent is not None:
        row = conn.execute(select(_at.c.revoked_at).where(_at.c.jti == parent).with_for_update(read=True)).first()
        if row is None or row.revoked_at is not None:
            raise IssueRefused("the token it was exchanged from was revoked or is gone")


def revoke_party(
    conn: Connection, *, user: str | None = None, client: str | None = None, family: str | None = None,
    actor: str | None = None, now: datetime | None = None,
) -> int:
    """Revoke the refresh tokens, codes and live access tokens of one user, client or family; return how many access tokens.

    In the caller's transaction; a policy change that disables or removes
    the party makes its own write first (the lock issuing waits on).
    """
    if [user, client, family].count(None) != 2:
        raise ValueError("revoke exactly one of a user, a client or a family")
    now = now or utcnow()
    if user is not None:
        code_is, refresh_is, token_is = _codes.c.user_name == user, _refresh.c.user_name == user, _at.c.subject == user
        conn.execute(select(t.users.c.name).where(t.users.c.name == user).with_for_update())
    elif client is not None:
        code_is, refresh_is, token_is = _codes.c.client_id == client, _refresh.c.client_id == client, _at.c.client_id == client
        conn.execute(select(t.clients.c.client_id).where(t.clients.c.client_id == client).with_for_update())
    else:
        code_is, refresh_is, token_is = _codes.c.family_id == family, _refresh.c.family_id == family, _at.c.family_id == family
    conn.execute(update(_codes).where(code_is, _codes.c.revoked_at.is_(None)).values(revoked_at=now))
    # Twice: an issue that held these rows' locks when the first update
    # began has committed a new refresh token by the second (PostgreSQL's
    # update does not see rows inserted after it started).
    for _ in range(2):
        conn.execute(update(_refresh).where(refresh_is, _refresh.c.revoked_at.is_(None)).values(revoked_at=now))
    return conn.execute(
        update(_at).where(token_is, _at.c.revoked_at.is_(None), _at.c.expires_at > now).values(revoked_at=now, revoked_by=actor)
    ).rowcount


def revoke_jti(engine: Engine, jti: str, actor: str | None = None) -> JtiRevocation:
    """Revoke one token by its jti (known to the ledger or not) and every live token exchanged from it.

    Nothing changes for a token that already was revoked, but the tokens
    exchanged from it are swept again (none should be live).
    """
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(_at).where(_at.c.jti == jti).with_for_update()).first()
        if row is None:
            expires = now + UNKNOWN_TOKEN_KEEP
            conn.execute(insert(_at).values(jti=jti, expires_at=expires, revoked_at=now, revoked_by=actor))
            return JtiRevocation(jti, False, False, None, None, expires)
        if row.revoked_at is None:
            conn.execute(update(_at).where(_at.c.jti == jti).values(revoked_at=now, revoked_by=actor))
        exchanged = revoke_exchanged(conn, jti, actor=actor, now=now)
        return JtiRevocation(jti, True, row.revoked_at is not None, row.subject, row.client_id, row.expires_at, exchanged)


def revoke_exchanged(conn: Connection, jti: str, *, actor: str | None = None, now: datetime | None = None) -> int:
    """Revoke the live tokens exchanged from `jti`, and from those, generation by generation; return how many.

    In the caller's transaction, after the row of `jti` was locked (or
    updated): an exchange that read it first has committed its token by now
    and is swept here; one that reads it later sees it revoked.
    """
    now = now or utcnow()
    count, parents, seen = 0, [jti], {jti}
    while parents:
        count += conn.execute(
            update(_at)
            .where(_at.c.parent_jti.in_(parents), _at.c.revoked_at.is_(None), _at.c.expires_at > now)
            .values(revoked_at=now, revoked_by=actor)
        ).rowcount
        children = conn.execute(select(_at.c.jti).where(_at.c.parent_jti.in_(parents))).scalars()
        # Each jti once: a ledger row naming itself (or a loop) cannot keep this going.
        parents = [child for child in children if child not in seen]
        seen.update(parents)
    return count


def ledger_entry(conn: Connection, jti: str):
    """The ledger row of `jti` (revoked_at, family_id, subject, client_id, expires_at…), or None if never recorded."""
    return conn.execute(select(_at).where(_at.c.jti == jti)).first()


def is_revoked(conn: Connection, jti: str) -> bool:
    """Whether `jti` is on the deny-list (the gateway uses REVOKED_SQL through a Lookup instead)."""
    return conn.execute(select(_at.c.jti).where(_at.c.jti == jti, _at.c.revoked_at.is_not(None))).first() is not None
