"""The hash chain: canonical JSON, argument digests and row hashes.

Each row's hash is SHA-256 over the canonical JSON of all its fields
(including its id and the previous row's hash), so changing a field,
removing a row or moving rows around breaks the chain:

    hash(row n) = sha256(canonical({id: n, at: …, kind: …, …, prev_hash: hash(row n-1)}))

The first row's `prev_hash` is GENESIS_HASH.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

GENESIS_HASH = "0" * 64

# Every column but `hash`, in table order; all of them are covered by the hash.
HASHED_FIELDS = (
    "id", "at", "kind", "ref_id", "session_id", "issuer", "subject", "client_id", "action",
    "target", "args_digest", "decision", "reason", "grant_id", "revision", "latency_ms",
    "outcome", "prev_hash",
)

# Made once: json.dumps with these options would build a new encoder per
# call, and every audited call hashes at least two values.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

# A compact JWS (header.payload.signature) such as a bearer token.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8, no NaN.

    >>> canonical_json({"b": [1, "é"], "a": None})
    '{"a":null,"b":[1,"é"]}'
    """
    return _CANONICAL.encode(value)


def args_digest(args: dict | None) -> str | None:
    """SHA-256 (hex) of the arguments' canonical JSON; the arguments themselves are never stored."""
    if args is None:
        return None
    return hashlib.sha256(canonical_json(args).encode("utf-8")).hexdigest()


def timestamp(at: datetime) -> str:
    """How `at` is written in the chain and in exports: UTC with microseconds."""
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def redact_tokens(text: str | None) -> str | None:
    """`text` with anything shaped like a bearer token replaced, so none is ever stored."""
    return _JWT.sub("[token removed]", text) if text else text


def row_hash(row: dict[str, Any]) -> str:
    """The hash a row must carry, from its fields (with `at` as a `timestamp()` string)."""
    body = {name: row.get(name) for name in HASHED_FIELDS}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
