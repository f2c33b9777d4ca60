"""Text that is safe to print on one line: stored and token-derived text escaped.

Subjects, client ids and reasons come from tokens that may be forged, and
from names an admin or a client typed. Printed as they are, a newline in a
refused token's `sub` would make `mcp-acl audit tail` show a second, forged
line, and an escape sequence could repaint the terminal. Every
human-readable output of the CLI and every log line that quotes such text
goes through `printable`; JSON output is left as it is (JSON escapes by itself).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the invisible format characters that move or
# reorder text: soft hyphen, zero-width marks, line/paragraph separators,
# bidirectional embeddings/overrides/isolates, word joiners, BOM, annotations;
# lone surrogates (no terminal encoding can write them: printing would raise)
# and the invisible tag characters (they can hide a second text inside a name).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ud800-\udfff"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value: object) -> str:
    """`value` as one line of text with every control or invisible format character escaped.

    Example: "alice\\n#9 decision allow" -> "alice\\\\n#9 decision allow";
    "\\x1b[2J" -> "\\\\x1b[2J"; "\\u202egnp.exe" -> "\\\\u202egnp.exe"; None -> "None".
    """
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)
