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

Limits (as for any hash chain without a secret key): removing the newest
rows, or rewriting the whole chain from some row on, cannot be seen from
the table alone. `head_hash` lets an operator note the head elsewhere and
compare it later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mcp_acl.audit.chain import GENESIS_HASH, row_hash


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

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl audit verify --json` prints."""
        return {
            "ok": self.ok, "count": self.count, "first_bad_id": self.first_bad_id,
            "problem": self.problem, "detail": self.detail, "head_hash": self.head_hash,
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


def verify_chain(rows: Iterable[dict], fetch: Callable[[int], dict | None], last_id: int) -> VerifyResult:
    """Check `rows` (oldest first, JSON-ready dicts); `fetch` looks a row up by id."""
    expected, prev, count = 1, GENESIS_HASH, 0

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
