"""Counting refused authentications per source, so a flood writes a few audit rows, not one per try.

Per source (a channel, such as bearer tokens or the sign-in page, and a
client address; an IPv6 address counts as its /64, see `mcp_acl.addresses`):

- the first refusal is written at once and opens a window;
- further refusals inside the window are only counted (the last one is kept
  as an example);
- when the window ends with a count, one summary row says how many there
  were, and a new window opens at once (the flood is still going: its next
  refusals are counted, not written one by one);
- a window that ends with no count is forgotten, so the next refusal from
  that source is again written at once.

Nothing is ever dropped from a count: when MAX_SOURCES sources have open
windows, further sources share one "(other sources)" window. Pure apart
from a lock: the caller passes `now` (monotonic seconds) and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from threading import Lock

from mcp_acl.addresses import source_of

WINDOW_SECONDS = 10.0
MAX_SOURCES = 10_000
OTHER_SOURCES = "(other sources)"


@dataclass(frozen=True)
class Refusal:
    """One refused authentication as the audit log stores it (names are unverified claims)."""

    reason: str
    issuer: str | None = None
    subject: str | None = None
    client_id: str | None = None
    count: int = 1  # how many refusals this row stands for

    def row(self) -> dict[str, str | None]:
        """The keyword arguments of `AuditLog.record_authentication`, every text storable (see `storable`)."""
        return {
            "reason": storable(self.reason), "issuer": storable(self.issuer, 1024),
            "subject": storable(self.subject, 255), "client_id": storable(self.client_id, 255),
        }


def storable(text: str | None, width: int | None = None) -> str | None:
    """`text` as any database can store it: lone surrogates and NUL escaped, cut to `width`.

    A forged token's claims are any JSON string: "\\ud800" decodes to a
    lone surrogate (no UTF-8 encoding) and "\\u0000" to NUL (PostgreSQL
    text refuses it); either made the row, and every refusal it counted,
    unwritable. Example: "eve\\x00" -> "eve\\\\x00".
    """
    if text is None:
        return None
    text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:width] if width is not None else text


@dataclass
class _Window:
    opened: float
    count: int = 0
    last: Refusal | None = None


@dataclass
class RefusalWindows:
    """Open windows by (channel, address); `note` and `due` say which rows to write."""

    seconds: float = WINDOW_SECONDS
    max_sources: int = MAX_SOURCES
    _open: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    def note(self, channel: str, address: str | None, refusal: Refusal, now: float) -> list[Refusal]:
        """Count one refusal; the rows to write now (its own, and a summary of an ended window)."""
        key = (channel, source_of(address))
        out: list[Refusal] = []
        with self._lock:
            window = self._open.get(key)
            if window is not None and now >= window.opened + self.seconds:
                out.extend(self._close(key, window, now))
                window = self._open.get(key)
            if window is None and key not in self._open and len(self._open) >= self.max_sources:
                key = (channel, OTHER_SOURCES)
                window = self._open.get(key)
            if window is None:
                self._open[key] = _Window(opened=now)
                out.append(Refusal(f"{refusal.reason} (from {key[1]})", refusal.issuer, refusal.subject, refusal.client_id))
            else:
                window.count += refusal.count
                window.last = refusal
        return out

    def carry(self, channel: str, address: str | None, refusal: Refusal, now: float) -> None:
        """Count a row that could not be written (e.g. a full queue) into its source's window."""
        key = (channel, source_of(address))
        with self._lock:
            if key not in self._open and len(self._open) >= self.max_sources:
                key = (channel, OTHER_SOURCES)
            window = self._open.setdefault(key, _Window(opened=now))
            window.count += refusal.count
            window.last = refusal

    def due(self, now: float) -> list[Refusal]:
        """Summaries of the windows that have ended by `now`."""
        with self._lock:
            ended = [(k, w) for k, w in self._open.items() if now >= w.opened + self.seconds]
            return [row for key, window in ended for row in self._close(key, window, now)]

    def flush(self, now: float) -> list[Refusal]:
        """Summaries of every window with a count (at shutdown); all windows are forgotten."""
        with self._lock:
            rows = [_summary(key, w, now) for key, w in self._open.items() if w.count]
            self._open.clear()
        return rows

    def _close(self, key: tuple[str, str], window: _Window, now: float) -> list[Refusal]:
        if not window.count:
            del self._open[key]
            return []
        self._open[key] = _Window(opened=now)
        return [_summary(key, window, now)]


def _summary(key: tuple[str, str], window: _Window, now: float) -> Refusal:
    channel, address = key
    last = window.last or Refusal("")
    seconds = max(now - window.opened, 0.0)
    reason = (
        f"{window.count} more refused {channel} from {address} in {seconds:.0f} s; the last: {last.reason}"
    )
    return Refusal(reason, last.issuer, last.subject, last.client_id, count=window.count)


def summarised_count(reason: str) -> int:
    """How many refusals a row stands for, read back from its reason.

    Example: "19 more refused authentications from 10.0.0.7 in 10 s; the last: …" -> 19;
    any other reason -> 1.
    """
    head, _, rest = reason.partition(" more refused ")
    return int(head) if head.isdigit() and rest else 1
