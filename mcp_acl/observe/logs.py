"""Log records as JSON lines (`serve --log-format json`, MCP_ACL_LOG_FORMAT=json).

One object per line: time (UTC, ISO 8601), level, logger, message, and the
JSON-RPC request id and short session id when the record was made while
handling an MCP request (observe/context.py). The gateway never logs a
token; as a second line of defence every message is scrubbed of anything
shaped like one (a bearer credential, a JWT, an `access_token=` value)
before it is written, uvicorn's access lines included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from mcp_acl.observe import context

ENV = "MCP_ACL_LOG_FORMAT"
FORMATS = ("text", "json")
REDACTED = "[redacted]"
_active = False

_TOKEN_SHAPES = re.compile(
    r"(?i)(?P<lead>bearer\s+|access_token=|refresh_token=|code=)[^\s&\"',;]+"
    r"|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)


def scrub(text: str) -> str:
    """`text` with anything shaped like a token replaced."""
    return _TOKEN_SHAPES.sub(lambda m: (m.group("lead") or "") + REDACTED, text)


class JsonLines(logging.Formatter):
    """A formatter writing each record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if (rid := context.request_id.get()) is not None:
            entry["request_id"] = rid
        if (sid := context.session_id.get()) is not None:
            entry["session"] = sid
        if record.exc_info:
            # The exception's class and where it was raised; its text is scrubbed like the message.
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def active() -> bool:
    """True once records go out as JSON lines."""
    return _active


def use_json_lines(level: int = logging.INFO) -> None:
    """Send every logger's records (uvicorn's too) to stderr as JSON lines."""
    global _active
    _active = True
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
