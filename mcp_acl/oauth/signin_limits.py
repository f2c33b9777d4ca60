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
- attempts let through (`begin`) whose password is still being checked
  count against the free failures until they `end`: guesses sent all at
  once get no more checks than the free ones, and once the free ones are
  used, one at a time; a right password ends its attempt without a count.

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
    pending: int = 0  # attempts let through whose password is still being checked


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

    def _delay(self, failures: int) -> float:
        return min(self.cap, self.base * 2 ** min(failures - self.free, 32))

    def blocked_until(self, key: str, now: float) -> float | None:
        found = self._live(key, now)
        return found.blocked_until if found is not None and found.blocked_until > now else None

    def must_wait(self, key: str, now: float) -> float:
        """Seconds before another attempt may start: a back-off, or attempts in flight that could start one."""
        found = self._live(key, now)
        if found is None:
            return 0.0
        if found.blocked_until > now:
            return found.blocked_until - now
        if found.pending and found.count + found.pending >= self.free:
            # Were they all wrong, this is the back-off they would start.
            return self._delay(found.count + found.pending)
        return 0.0

    def _keep(self, key: str, found: _Failures) -> None:
        self.entries[key] = found
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    def start(self, key: str, now: float) -> None:
        found = self._live(key, now) or _Failures(0, now, now)
        found.pending += 1
        found.last = now
        self._keep(key, found)

    def finish(self, key: str, now: float, wrong: bool) -> None:
        found = self.entries.get(key)
        if found is not None:
            found.pending = max(0, found.pending - 1)
        if wrong:
            self.fail(key, now)
        elif found is not None and found.count == 0 and found.pending == 0:
            del self.entries[key]

    def fail(self, key: str, now: float) -> None:
        found = self._live(key, now) or _Failures(0, now, now)
        found.count += 1
        found.last = now
        if found.count >= self.free:
            found.blocked_until = now + self._delay(found.count)
        self._keep(key, found)

    def clear(self, key: str) -> None:
        self.entries.pop(key, None)


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
        """Let one attempt through (0; then call `end`), or the seconds it must wait (nothing started).

        Checked and started under one lock, and attempts in flight count
        against the free failures: guesses sent all at once cannot all be
        let through before the first of them is found wrong.
        """
        with self._lock:
            wait = max(
                self._accounts.must_wait(_account_key(account), now),
                self._addresses.must_wait(_address_key(address), now),
            )
            if wait <= 0:
                self._accounts.start(_account_key(account), now)
                self._addresses.start(_address_key(address), now)
        return wait

    def end(self, account: str, address: str | None, now: float, *, wrong: bool) -> None:
        """An attempt `begin` let through is over; `wrong` counts it as a failed sign-in."""
        with self._lock:
            self._accounts.finish(_account_key(account), now, wrong)
            self._addresses.finish(_address_key(address), now, wrong)

    def failed(self, account: str, address: str | None, now: float) -> None:
        """Count a wrong password (or unknown name) for `account` from `address`."""
        with self._lock:
            self._accounts.fail(_account_key(account), now)
            self._addresses.fail(_address_key(address), now)

    def succeeded(self, account: str) -> None:
        """Forget the failures of `account` after a good sign-in (its address keeps its count)."""
        with self._lock:
            self._accounts.clear(_account_key(account))


def _account_key(account: str) -> str:
    return account.strip().casefold()


def _address_key(address: str | None) -> str:
    return source_of(address)  # an IPv6 address counts as its /64
