"""Authorization requests between GET /authorize and the user's consent.

Each request gets a random id that the sign-in and consent forms carry. It
works as the forms' CSRF token: it is unguessable, stored only as a digest,
bound to the browser cookie that started it, and used up by the consent
answer (allow or deny), so a request can be answered once. A `state` that a
client already used for another request is refused, so a replayed
authorization URL starts nothing. MAX_FAILED_LOGINS uses up one request;
failures across requests are limited by `signin_limits`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mcp_acl.oauth._digest import digest, matches, new_token
from mcp_acl.store import tables as t

MAX_FAILED_LOGINS = 5
_KEEP_USED_FOR = timedelta(days=1)  # how long a used `state` is remembered


class StateReusedError(ValueError):
    """The client sent a `state` it already used in another authorization request."""


@dataclass(frozen=True)
class PendingRequest:
    """An authorization request waiting for sign-in and consent."""

    client_id: str
    params: dict[str, str]
    user_name: str | None


class SignInRequests:
    """Stores pending authorization requests."""

    def __init__(self, engine: Engine, ttl: timedelta = timedelta(minutes=10)) -> None:
        self.engine = engine
        self.ttl = ttl

    def start(self, *, client_id: str, params: dict[str, str], browser_id: str) -> str:
        """Record a validated authorization request; return its id."""
        request_id = new_token()
        now = datetime.now(timezone.utc)
        state = params.get("state")
        reqs = t.oauth_authorization_requests
        try:
            with self.engine.begin() as conn:
                # Old rows go as new ones come, so the table stays small without a cron job.
                conn.execute(delete(reqs).where(reqs.c.created_at < now - _KEEP_USED_FOR))
                conn.execute(
                    insert(reqs).values(
                        id_hash=digest(request_id), client_id=client_id,
                        state_hash=digest(state) if state else None, params=json.dumps(params),
                        browser_hash=digest(browser_id), user_name=None, failed_logins=0,
                        created_at=now, expires_at=now + self.ttl, consumed_at=None,
                    )
                )
        except IntegrityError as exc:
            raise StateReusedError("this state was already used in another authorization request") from exc
        return request_id

    def _row(self, conn, request_id: str, browser_id: str | None):
        if not request_id or not browser_id:
            return None
        reqs = t.oauth_authorization_requests
        row = conn.execute(select(reqs).where(reqs.c.id_hash == digest(request_id))).first()
        if row is None or row.consumed_at is not None or row.expires_at <= datetime.now(timezone.utc):
            return None
        if not matches(browser_id, row.browser_hash):
            return None
        return row

    def find(self, request_id: str, browser_id: str | None) -> PendingRequest | None:
        """The live request `request_id` if this browser started it; else None."""
        with self.engine.connect() as conn:
            row = self._row(conn, request_id, browser_id)
        return None if row is None else PendingRequest(row.client_id, json.loads(row.params), row.user_name)

    def signed_in(self, request_id: str, browser_id: str | None, user_name: str) -> bool:
        """Record who signed in for the request; False if the request is gone."""
        reqs = t.oauth_authorization_requests
        with self.engine.begin() as conn:
            if self._row(conn, request_id, browser_id) is None:
                return False
            conn.execute(update(reqs).where(reqs.c.id_hash == digest(request_id)).values(user_name=user_name))
        return True

    def failed_login(self, request_id: str, browser_id: str | None) -> bool:
        """Count a failed sign-in; False once the request is used up by too many."""
        reqs = t.oauth_authorization_requests
        with self.engine.begin() as conn:
            row = self._row(conn, request_id, browser_id)
            if row is None:
                return False
            failed = row.failed_logins + 1
            values = {"failed_logins": failed}
            if failed >= MAX_FAILED_LOGINS:
                values["consumed_at"] = datetime.now(timezone.utc)
            conn.execute(update(reqs).where(reqs.c.id_hash == digest(request_id)).values(**values))
        return failed < MAX_FAILED_LOGINS

    def consume(self, request_id: str, browser_id: str | None) -> PendingRequest | None:
        """Use up a signed-in request for its consent answer; None if it cannot be used."""
        reqs = t.oauth_authorization_requests
        with self.engine.begin() as conn:
            row = self._row(conn, request_id, browser_id)
            if row is None or row.user_name is None:
                return None
            claimed = conn.execute(
                update(reqs)
                .where(reqs.c.id_hash == row.id_hash, reqs.c.consumed_at.is_(None))
                .values(consumed_at=datetime.now(timezone.utc))
            ).rowcount
        if not claimed:
            return None
        return PendingRequest(row.client_id, json.loads(row.params), row.user_name)
