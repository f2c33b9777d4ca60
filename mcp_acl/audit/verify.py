"""Checking the audit chain and naming the first thing that is wrong.

Rows are walked by id. At the first bad row the problem is one of:

    problem     what was found
    ---------   ---------------------------------------------------------------
    deleted     ids jump (rows missing), or a row holds a later row's contents
                (rows deleted and the rest renumbered)
    edited      a row's fields do not match its hash; or a row was re-hashed
                after an edit, so the next row no longer names its hash
    reordered   two rows hold each other's contents
    inserted    a row is a copy of another, holds an earlier row's contents
                (a row inserted and the rest renumbered), or was appended
                without linking to the row before it

Then the chain's end is held against the head record (`audit_head`, moved
in the same transaction as every append), read before and after the walk:

    deleted     the head record names a row the chain no longer reaches
                (the newest rows were removed), or the head record is gone
    edited      the row the head record names has another hash
    inserted    rows past the head record (not appended by mcp-acl)

Someone who can write the database can still delete the newest rows and
rewrite the head record to match, or rewrite the chain from some row on.
A signed anchor kept elsewhere (mcp_acl/audit/anchor.py; `check_anchor`
below) catches both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from mcp_acl.audit.chain import GENESIS_HASH, row_hash


@dataclass(frozen=True)
class Anchor:
    """A checkpoint whose signature has been checked: the head row's id and hash, and when."""

    head_id: int
    head_hash: str
    issued_at: datetime

    def describe(self) -> str:
        """e.g. `the anchor of 2026-12-06 03:10:00Z (row 41)`."""
        return f"the anchor of {self.issued_at:%Y-%m-%d %H:%M:%S}Z (row {self.head_id})"


@dataclass(frozen=True)
class VerifyResult:
    """The verdict of `AuditLog.verify()`."""

    ok: bool
    # Rows found intact (before the first bad one, or all of them).
    count: int
    first_bad_id: int | None = None
    # "edited", "deleted", "reordered" or "inserted".
    problem: str | None = None
    detail: str | None = None
    # The hash of the last intact row (None for an empty log).
    head_hash: str | None = None
    # The row an anchor named, when one was checked and the chain holds it.
    anchored_id: int | None = None

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl audit verify --json` prints."""
        return {
            "ok": self.ok, "count": self.count, "first_bad_id": self.first_bad_id,
            "problem": self.problem, "detail": self.detail, "head_hash": self.head_hash,
            "anchored_id": self.anchored_id,
        }


def _misplaced(row: dict, fetch: Callable[[int], dict | None], top: int) -> tuple[str, str]:
    """Why a row's hash does not fit it: does it belong at another id, or was it edited?"""
    rid = row["id"]
    # The id is part of the hash, so a row moved from id k hashes right only as k.
    home = next((k for k in range(1, top + 2) if k != rid and row_hash(row | {"id": k}) == row["hash"]), None)
    if home is None:
        return "edited", f"row {rid} does not match its hash: it was edited"
    other = fetch(home)
    if other is not None and other["hash"] == row["hash"]:
        return "inserted", f"row {rid} is a copy of row {home}: a row was inserted"
    if other is not None and row_hash(other | {"id": rid}) == other["hash"]:
        return "reordered", f"rows {rid} and {home} hold each other's contents: they were swapped"
    if home < rid:
        return "inserted", f"row {rid} holds what was row {home}: a row was inserted before it and the rest renumbered"
    return "deleted", f"row {rid} holds what was row {home}: rows were deleted and the rest renumbered"


def verify_chain(
    rows: Iterable[dict], fetch: Callable[[int], dict | None], last_id: int, start: tuple[int, str] = (0, GENESIS_HASH),
) -> VerifyResult:
    """Check `rows` (oldest first, JSON-ready dicts); `fetch` looks a row up by id.

    With `start` (id, hash), `rows` begin after row `id`, which the caller
    has found intact with `hash` (`check_point`); rows up to it count as intact.
    """
    expected, prev, count = start[0] + 1, start[1], start[0]

    def bad(first: int, problem: str, detail: str, intact: int, head: str) -> VerifyResult:
        return VerifyResult(False, intact, first, problem, detail, head if intact else None)

    for row in rows:
        rid = row["id"]
        if rid != expected:
            missing = f"row {expected} is" if rid == expected + 1 else f"rows {expected} to {rid - 1} are"
            return bad(rid, "deleted", f"{missing} missing before row {rid}", count, prev)
        if row_hash(row) != row["hash"]:
            problem, detail = _misplaced(row, fetch, max(last_id, rid))
            return bad(rid, problem, detail, count, prev)
        if row["prev_hash"] != prev:
            if rid == 1:
                return bad(1, "edited", "row 1 does not start from the genesis hash: it was rewritten", 0, prev)
            if rid >= last_id:
                return bad(rid, "inserted", f"row {rid} was appended without linking to row {rid - 1}", count, prev)
            if rid - 1 == start[0]:  # the row before still has the hash checked earlier: this one was rewritten
                return bad(rid, "edited", f"row {rid} does not name the hash row {rid - 1} had when checked: it was rewritten", count, prev)
            before = fetch(rid - 1)
            return bad(
                rid - 1, "edited",
                f"row {rid - 1} was changed and given a new hash; row {rid} still names its old one",
                count - 1, before["prev_hash"] if before else prev,
            )
        prev = row["hash"]
        expected += 1
        count += 1
    return VerifyResult(True, count, head_hash=prev if count else None)


def check_point(point_id: int, point_hash: str, fetch: Callable[[int], dict | None]) -> VerifyResult | None:
    """Whether row `point_id` is still the row an earlier check left intact with `point_hash`; None when it is.

    The rows after it can then be checked from it (`verify_chain(start=…)`);
    rows before it are not read again.
    """
    if point_id == 0:
        return None if point_hash == GENESIS_HASH else VerifyResult(False, 0, None, "edited", "the checked point is not the genesis hash")
    row = fetch(point_id)
    if row is None:
        return VerifyResult(False, point_id - 1, point_id, "deleted", f"row {point_id}, found intact before, is gone: rows were deleted")
    if row["hash"] != point_hash:
        return VerifyResult(False, point_id - 1, point_id, "edited",
                            f"row {point_id} no longer has the hash it had when checked: the chain was rewritten at or before it")
    if row_hash(row) != point_hash:
        return VerifyResult(False, point_id - 1, point_id, "edited", f"row {point_id} does not match its hash: it was edited")
    return None


def _rows(first: int, last: int) -> str:
    return f"row {first} is" if first == last else f"rows {first} to {last} are"


def _hash_at(row_id: int, fetch: Callable[[int], dict | None]) -> str | None:
    if row_id == 0:
        return GENESIS_HASH
    row = fetch(row_id)
    return row["hash"] if row else None


def check_head(
    result: VerifyResult,
    before: tuple[int, str] | None,
    after: tuple[int, str] | None,
    fetch: Callable[[int], dict | None],
) -> VerifyResult:
    """Hold an intact chain's end against the head record, read (last id, last hash) before and after the walk."""
    if not result.ok:
        return result
    if before is None or after is None:
        return replace(result, ok=False, problem="deleted",
                       detail="the head record (table audit_head) is missing: it was deleted, so rows may be missing from the end")
    # An intact chain holds rows 1..count.
    end = result.count
    if before[0] > end:
        return replace(result, ok=False, first_bad_id=end + 1, problem="deleted",
                       detail=f"{_rows(end + 1, before[0])} missing at the end: the head record names row {before[0]}")
    for head_id, head_hash in (before, after):
        if head_id <= end and _hash_at(head_id, fetch) != head_hash:
            return replace(result, ok=False, first_bad_id=head_id or None, problem="edited",
                           detail=f"row {head_id} is not the row the head record names: the chain was rewritten, or the head record was")
    if after[0] < end:
        return replace(result, ok=False, first_bad_id=after[0] + 1, problem="inserted",
                       detail=f"{_rows(after[0] + 1, end)} past the head record (row {after[0]}): not appended by mcp-acl")
    return result


def check_anchor(result: VerifyResult, anchor: Anchor, fetch: Callable[[int], dict | None]) -> VerifyResult:
    """Hold an intact chain against `anchor`: it must reach the anchored row, and that row be unchanged."""
    if not result.ok:
        return result
    end = result.count  # an intact chain holds rows 1..count
    if anchor.head_id > end:
        return replace(result, ok=False, first_bad_id=end + 1, problem="deleted", detail=(
            f"the chain ends at row {end} but {anchor.describe()} names row {anchor.head_id}: "
            "rows were deleted from the end"
        ))
    if _hash_at(anchor.head_id, fetch) != anchor.head_hash:
        return replace(result, ok=False, first_bad_id=anchor.head_id or None, problem="edited", detail=(
            f"row {anchor.head_id} is not the row {anchor.describe()} names: the chain was rewritten at or before it"
        ))
    return replace(result, anchored_id=anchor.head_id)
