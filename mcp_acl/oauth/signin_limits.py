"""Back-off after failed sign-ins, per account and per client address.

A new authorization request costs an attacker nothing, so the per-request
limit of `signin_requests` alone would leave password guessing bounded by
Argon2's cost only. Here failures are counted per account name (as typed,
case-folded) and per client address (an IPv6 address as its /64), across requests:

- after ACCOUNT_FREE failures (per account) or ADDRESS_FREE (per address)
  a back-off of BASE_DELAY starts, doubling with every further failure,
  capped at MAX_DELAY;
- while either back-off runs, no password is checked at all: the right one
  is refused too, so guesses cannot be tried during the back-off;
- a successful sign-in clears its account's count (not its address's: one
  good account must not buy more guesses at others); counts are forgotten
  after FORGET_AFTER without a failure;
- an attempt is counted as a failure the moment it is let through
  (`begin`), before its password is checked, and given back when the
  password was right (`succeeded`, `refund`): so guesses sent all at once
  are counted as they arrive, and no more than the free ones get checked.

Unknown account names are counted exactly like real ones, so the answer
never tells whether an account exists. The state lives in memory, in the
serving process, bounded to MAX_ENTRIES names and MAX_ENTRIES addresses
(least recently failed forgotten first): a restart or another replica
starts from zero. Pure apart from a lock: callers pass `now` (seconds of `clock`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from mcp_acl.addresses import source_of

ACCOUNT_FREE = 5
ADDRESS_FREE = 20
BASE_DELAY = 30.0  # seconds
MAX_DELAY = 15 * 60.0
FORGET_AFTER = 60 * 60.0
MAX_ENTRIES = 10_000


@dataclass
class _Failures:
    count: int
    last: float
    blocked_until: float


class _Counter:
    """Failures by key, least recently failed first, at most `max_entries` keys."""

    def __init__(self, free: int, base: float, cap: float, forget_after: float, max_entries: int) -> None:
        self.free, self.base, self.cap = free, base, cap
        self.forget_after, self.max_entries = forget_after, max_entries
        self.entries: OrderedDict[str, _Failures] = OrderedDict()

    def _live(self, key: str, now: float) -> _Failures | None:
        found = self.entries.get(key)
        if found is not None and now - found.last >= self.forget_after:
            del self.entries[key]
            return None
        return found

    def blocked_until(self, key: str, now: float) -> float | None:
        found = self._live(key, now)
        return found.blocked_until if found is not None and found.blocked_until > now else None

    def fail(self, key: str, now: float) -> None:
        found = self._live(key, now) or _Failures(0, now, now)
        found.count += 1
        found.last = now
        if found.count >= self.free:
            delay = min(self.cap, self.base * 2 ** min(found.count - self.free, 32))
            found.blocked_until = now + delay
        self.entries[key] = found
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def clear(self, key: str) -> None:
        self.entries.pop(key, None)

    def refund(self, key: str) -> None:
        """Take back one failure counted by `begin` for an attempt that did not fail."""
        found = self.entries.get(key)
        if found is None:
            return
        found.count -= 1
        if found.count <= 0:
            del self.entries[key]
        elif found.count < self.free:
            found.blocked_until = found.last  # fewer failures than the free ones: no back-off


class SignInLimits:
    """Failed sign-ins per account and per address; says until when a sign-in must wait."""

    def __init__(
        self, *, account_free: int = ACCOUNT_FREE, address_free: int = ADDRESS_FREE, base_delay: float = BASE_DELAY,
        max_delay: float = MAX_DELAY, forget_after: float = FORGET_AFTER, max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock  # what the sign-in page passes as `now`
        self._accounts = _Counter(account_free, base_delay, max_delay, forget_after, max_entries)
        self._addresses = _Counter(address_free, base_delay, max_delay, forget_after, max_entries)
        self._lock = Lock()

    def wait(self, account: str, address: str | None, now: float) -> float:
        """Seconds until `account` may try again from `address`; 0 when it may try now."""
        with self._lock:
            until = [
                self._accounts.blocked_until(_account_key(account), now),
                self._addresses.blocked_until(_address_key(address), now),
            ]
        return max((u - now for u in until if u is not None), default=0.0)

    def begin(self, account: str, address: str | None, now: float) -> float:
        """Let one attempt through, counted as a failure until `succeeded`/`refund`; or the seconds to wait (nothing counted).

        Checking and counting under one lock: guesses sent concurrently cannot
        all pass the check before any of them is counted.
        """
        with self._lock:
            until = [
                self._accounts.blocked_until(_account_key(account), now),
                self._addresses.blocked_until(_address_key(address), now),
            ]
            wait = max((u - now for u in until if u is not None), default=0.0)
            if wait <= 0:
                self._accounts.fail(_account_key(account), now)
                self._addresses.fail(_address_key(address), now)
        return wait

    def refund(self, account: str, address: str | None) -> None:
        """Give back what `begin` counted, for an attempt that was not a wrong password."""
        with self._lock:
            self._accounts.refund(_account_key(account))
            self._addresses.refund(_address_key(address))

    def failed(self, account: str, address: str | None, now: float) -> None:
        """Count a wrong password (or unknown name) for `account` from `address`."""
        with self._lock:
            self._accounts.fail(_account_key(account), now)
            self._addresses.fail(_address_key(address), now)

    def succeeded(self, account: str, address: str | None = None) -> None:
        """Forget the failures of `account` after a good sign-in (its address keeps its count, less what `begin` added)."""
        with self._lock:
            self._accounts.clear(_account_key(account))
            if address is not None:
                self._addresses.refund(_address_key(address))


def _account_key(account: str) -> str:
    return account.strip().casefold()


def _address_key(address: str | None) -> str:
    return source_of(address)  # an IPv6 address counts as its /64
