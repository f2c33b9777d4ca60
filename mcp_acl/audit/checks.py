"""The last full verification of the audit chain, kept in the database, and cheap checks since.

A full verification (`AuditLog.verify`: `mcp-acl audit verify`, `audit
anchor`, the console's "Verify now") walks every row; on a log of millions
of rows that takes minutes. Its verdict is recorded (table `audit_checks`,
one row): when, by whom, what it found, and the point it reached (the last
intact row's id and hash).

The console's overview then checks only what was appended since
(`AuditLog.verify_since`): the point's row must still be there with the
same hash and fields, every later row must link from it, and the chain's
end must reach the head record (so rows deleted from the end, a changed
row after the point and a missing head record are found, as by a full
verification). When that holds the point moves to the end, so the next
look starts there.

What such a look does not do is read the rows up to the point again: a row
changed there after it was checked is found by the next full verification,
or by an anchor, never by the overview. The record itself lives in the
database, so whoever can rewrite the log can rewrite it too; that is what
anchors kept elsewhere are for (anchor.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mcp_acl.audit.chain import GENESIS_HASH
from mcp_acl.audit.log import AuditLog
from mcp_acl.audit.verify import VerifyResult
from mcp_acl.store import tables as t

log = logging.getLogger(__name__)
ch = t.audit_checks


@dataclass(frozen=True)
class Verification:
    """The last full verification, and the point (row id, hash) the chain has been checked up to since."""

    at: datetime
    by: str
    result: VerifyResult
    checked_id: int
    checked_hash: str
    checked_at: datetime


def record_full(engine: Engine, result: VerifyResult, by: str, at: datetime) -> None:
    """Keep `result` of a full verification (by `by`, finished `at`) as the last one.

    An intact chain becomes the new point to check from; a broken one
    leaves no point: the overview shows it broken until a full
    verification finds the chain intact again.
    """
    values = {
        "verified_at": at, "verified_by": by[:255], "ok": result.ok, "row_count": result.count,
        "first_bad_id": result.first_bad_id, "problem": result.problem, "detail": result.detail,
        "head_hash": result.head_hash, "checked_id": result.count if result.ok else 0,
        "checked_hash": (result.head_hash or GENESIS_HASH) if result.ok else GENESIS_HASH, "checked_at": at,
    }
    try:
        with engine.begin() as conn:
            if not conn.execute(update(ch).where(ch.c.id == 1).values(values)).rowcount:
                conn.execute(insert(ch).values(id=1, **values))
    except IntegrityError:  # another verification made the row meanwhile: this one is newer
        with engine.begin() as conn:
            conn.execute(update(ch).where(ch.c.id == 1).values(values))


def last_full(engine: Engine) -> Verification | None:
    """The last full verification recorded, or None when there has been none."""
    with engine.connect() as conn:
        row = conn.execute(select(ch).where(ch.c.id == 1)).first()
    if row is None:
        return None
    result = VerifyResult(row.ok, row.row_count, row.first_bad_id, row.problem, row.detail, row.head_hash)
    return Verification(row.verified_at, row.verified_by, result, row.checked_id, row.checked_hash, row.checked_at)


@dataclass(frozen=True)
class ChainState:
    """What the overview shows: the head record, the last full verification and this look's check."""

    head: tuple[int, str] | None
    full: Verification | None
    # The rows after `full.checked_id` checked now; None when nothing was
    # checked (no full verification yet, or the last one found the chain broken).
    since: VerifyResult | None

    @property
    def ok(self) -> bool | None:
        """True intact, False broken, None not known (never verified in full)."""
        if self.full is None:
            return None
        if not self.full.result.ok:
            return False
        return self.since is not None and self.since.ok

    @property
    def broken(self) -> VerifyResult | None:
        """The verdict naming what is wrong, when something is."""
        if self.full is not None and not self.full.result.ok:
            return self.full.result
        return self.since if self.since is not None and not self.since.ok else None


def look(engine: Engine, now: datetime) -> ChainState:
    """Check the rows added since the last checked point (see the module's text); move the point on when they hold."""
    audit = AuditLog(engine)
    full = last_full(engine)
    if full is None or not full.result.ok:
        return ChainState(audit.head(), full, None)
    since = audit.verify_since(full.checked_id, full.checked_hash)
    if since.ok and since.count > full.checked_id:
        _advance(engine, full, since.count, since.head_hash or GENESIS_HASH, now)
    return ChainState(audit.head(), full, since)


def _advance(engine: Engine, full: Verification, to_id: int, to_hash: str, now: datetime) -> None:
    # Only from the point this look started at, and only under the same full
    # verification: a newer verification, or a look that got further, wins.
    try:
        with engine.begin() as conn:
            conn.execute(
                update(ch).where(ch.c.id == 1, ch.c.checked_id == full.checked_id, ch.c.checked_hash == full.checked_hash,
                                 ch.c.verified_at == full.at)
                .values(checked_id=to_id, checked_hash=to_hash, checked_at=now)
            )
    except SQLAlchemyError as exc:  # the next look starts from the old point: slower, never wrong
        log.warning("could not record the audit chain checked up to row %s: %s", to_id, exc.__class__.__name__)
