"""The audit log: one hash-chained row per decision, outcome and refused sign-in.

A row is committed before `record_*` returns; any failure raises AuditError
and the gateway then refuses the call. Appends are serialised across
threads, processes and replicas (PostgreSQL: a row lock on the head
record; SQLite: the database write lock, taken by the transaction's first
statement), so each row can name the previous row's hash and take the next
id from the head record, which moves in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

from sqlalchemy import Engine, select

from mcp_acl.audit.appender import Appender, ChainError, PolicyMoved
from mcp_acl.audit.chain import GENESIS_HASH, args_digest, canonical_json, redact_tokens, timestamp
from mcp_acl.audit.verify import Anchor, VerifyResult, check_anchor, check_head, check_point, verify_chain
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import tables as t
from mcp_acl.store.lookup import WouldWait

_BATCH = 500
_OUTCOMES = ("ok", "error")
# Column widths (tables.py); checked here so both databases refuse alike.
_WIDTHS = {"session_id": 128, "issuer": 1024, "subject": 255, "client_id": 255, "action": 32, "decision": 8, "outcome": 16}

ev = t.audit_events


class AuditError(RuntimeError):
    """The audit row could not be written (the call must then be refused) or read."""


def _public(row) -> dict[str, Any]:
    data = dict(row._mapping)
    data["at"] = timestamp(data["at"])
    return data


class AuditLog:
    """Appends to and reads the `audit_events` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._appender = Appender(engine)

    # writing -------------------------------------------------------------

    def record_decision(
        self,
        *,
        session_id: str | None,
        identity: Identity,
        action: str,
        target: str,
        args: dict | None,
        decision: Decision,
        latency_ms: float,
        still_current: bool = False,
        quota: Any = None,
    ) -> int:
        """Append one decision (allowed or refused) and return its row id, committed.

        With `still_current`, an allow is written only while the policy is
        still at `decision.revision`; else PolicyMoved is raised (nothing written).
        With `quota` (store.usage.QuotaCharge), the allowed call is counted in
        the same transaction; a used-up quota sets `quota.refusal` and the
        row is written as that refusal.
        """
        try:
            values = {
                "kind": "decision", "session_id": session_id, "issuer": identity.issuer,
                "subject": identity.subject, "client_id": identity.client_id, "action": action,
                "target": redact_tokens(target), "args_digest": args_digest(args),
                "decision": "allow" if decision.allowed else "deny", "reason": redact_tokens(decision.reason),
                "grant_id": decision.grant_id, "revision": decision.revision,
                "latency_ms": round(float(latency_ms), 3),
            }
        except Exception as exc:
            raise AuditError(f"the audit row could not be made: {exc.__class__.__name__}: {exc}") from exc
        revision = decision.revision if still_current and decision.allowed else None
        return self._append_all([values], revision, quota)[-1]

    def record_outcome(self, decision_id: int, outcome: str, *, session_id: str | None = None) -> None:
        """Append how an allowed call ended ("ok" or "error"), pointing at its decision row."""
        self.record_outcomes([(decision_id, outcome, session_id)])

    def record_outcomes(self, outcomes: Sequence[tuple[int, str, str | None]]) -> None:
        """Append several outcomes (decision row id, "ok"/"error", session) in order, in one transaction."""
        for _, outcome, _ in outcomes:
            if outcome not in _OUTCOMES:
                raise AuditError(f"outcome must be one of {', '.join(_OUTCOMES)}, not {outcome!r}")
        rows = [{"kind": "outcome", "ref_id": ref, "session_id": session, "outcome": outcome} for ref, outcome, session in outcomes]
        if rows:
            self._append_all(rows)

    def record_authentication(
        self,
        *,
        reason: str,
        issuer: str | None = None,
        subject: str | None = None,
        client_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Append a refused authentication (never the token itself)."""
        self._append({
            "kind": "authentication", "session_id": session_id, "issuer": issuer, "subject": subject,
            "client_id": client_id, "action": "authenticate", "decision": "deny", "reason": redact_tokens(reason),
        })

    def record_approval(self, *, target: str, reason: str, subject: str | None = None, revision: int | None = None) -> int:
        """Append an administrator's approval (e.g. of an upstream's tool definitions, target `upstream:NAME`)."""
        return self._append({
            "kind": "approval", "subject": subject, "client_id": "mcp-acl-cli", "action": "approve",
            "target": redact_tokens(target), "decision": "allow", "reason": redact_tokens(reason), "revision": revision,
        })

    def record_hold(
        self, *, action: str, target: str, reason: str, decision: str, ref_id: int | None = None,
        subject: str | None = None, client_id: str | None = None, issuer: str | None = None,
        session_id: str | None = None, grant_id: int | None = None, revision: int | None = None,
    ) -> int:
        """Append one step of a held call (gateway/holds.py): `approval/request`, `/approve`, `/deny`,
        `/timeout`, `/cancel` or `/reuse`; `ref_id` is the decision row that held it."""
        return self._append({
            "kind": "hold", "ref_id": ref_id, "session_id": session_id, "issuer": issuer, "subject": subject,
            "client_id": client_id, "action": action, "target": redact_tokens(target), "decision": decision,
            "reason": redact_tokens(reason), "grant_id": grant_id, "revision": revision,
        })

    def record_revocation(self, *, target: str, reason: str, subject: str | None = None) -> int:
        """Append an administrator's revocation of access tokens (target `token:JTI`, `user:NAME`, `client:ID`)."""
        return self._append({
            "kind": "revocation", "subject": subject, "client_id": "mcp-acl-cli", "action": "revoke",
            "target": redact_tokens(target), "decision": "deny", "reason": redact_tokens(reason),
        })

    def _append(self, values: dict[str, Any]) -> int:
        return self._append_all([values])[-1]

    def _append_all(self, batch: list[dict[str, Any]], revision: int | None = None, quota: Any = None) -> list[int]:
        for values in batch:
            for name, width in _WIDTHS.items():
                value = values.get(name)
                if value is not None and (not isinstance(value, str) or len(value) > width):
                    raise AuditError(f"the audit row's {name} is not text of at most {width} characters")
        try:
            return self._appender.append(batch, revision, quota)
        except ChainError as exc:
            raise AuditError(str(exc)) from exc
        except (WouldWait, PolicyMoved):
            raise  # nothing was written; the caller appends where it may wait, or decides again
        except Exception as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise AuditError(f"the audit row could not be written: {exc.__class__.__name__}: {detail[0] if detail else ''}") from exc

    # reading -------------------------------------------------------------

    def iter_rows(self, after_id: int = 0) -> Iterator[dict]:
        """Rows with id > `after_id`, oldest first, as JSON-ready dicts (read in batches)."""
        while True:
            with self.engine.connect() as conn:
                batch = conn.execute(select(ev).where(ev.c.id > after_id).order_by(ev.c.id).limit(_BATCH)).all()
            for row in batch:
                yield _public(row)
            if len(batch) < _BATCH:
                return
            after_id = batch[-1].id

    def tail(self, n: int) -> list[dict]:
        """The last `n` rows, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ev).order_by(ev.c.id.desc()).limit(max(n, 0))).all()
        return [_public(r) for r in reversed(rows)]

    def follow(self, after_id: int = 0, poll_seconds: float = 1.0) -> Iterator[dict]:
        """Rows after `after_id` as they are appended; never ends (the caller stops it)."""
        while True:
            for row in self.iter_rows(after_id):
                after_id = row["id"]
                yield row
            time.sleep(poll_seconds)

    def export_jsonl(self, fp: IO[str]) -> int:
        """Write every row as one JSON line to `fp`; return how many."""
        count = 0
        for row in self.iter_rows():
            fp.write(canonical_json(row) + "\n")
            count += 1
        return count

    def verify(self, anchor: Anchor | None = None) -> VerifyResult:
        """Walk the chain, hold its end against the head record and, if given, `anchor`.

        See mcp_acl/audit/verify.py and anchor.py for what is found and how it is named.
        """
        # The whole chain is the check from the genesis point, which always holds.
        result = self.verify_since(0, GENESIS_HASH)
        return check_anchor(result, anchor, self.row) if anchor is not None else result

    def verify_since(self, point_id: int, point_hash: str) -> VerifyResult:
        """Check only what changed since an earlier check left row `point_id` intact with `point_hash`.

        That row must still be there with that hash and its fields; the rows
        after it must link from it; the end must reach the head record, as
        in `verify`. Rows before the point are not read: a change to them is
        found by the next full `verify` (or an anchor), not here.
        """
        # The head is read before and after the walk: rows appended meanwhile
        # are neither missing nor forged.
        before = self.head()
        found = check_point(point_id, point_hash, self.row)
        if found is not None:
            return found
        result = verify_chain(self.iter_rows(point_id), self.row, self.last_id(), start=(point_id, point_hash))
        return check_head(result, before, self.head(), self.row)

    def head(self) -> tuple[int, str] | None:
        """The head record: the newest row's id and hash as the appends left them (None if it is missing)."""
        with self.engine.connect() as conn:
            found = conn.execute(select(t.audit_head.c.last_id, t.audit_head.c.last_hash).where(t.audit_head.c.id == 1)).first()
        return (found.last_id, found.last_hash) if found else None

    def row(self, row_id: int) -> dict | None:
        """One row by id, or None."""
        with self.engine.connect() as conn:
            found = conn.execute(select(ev).where(ev.c.id == row_id)).first()
        return _public(found) if found else None

    def last_id(self) -> int:
        """The highest row id (0 when the log is empty)."""
        with self.engine.connect() as conn:
            return conn.execute(select(ev.c.id).order_by(ev.c.id.desc()).limit(1)).scalar() or 0
