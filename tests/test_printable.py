"""`printable`: the one escape every human-readable output uses."""

from __future__ import annotations

import pytest

from mcp_acl.printable import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("alice", "alice"),
        ("alice\n#9 2026-12-06 decision allow", "alice\\n#9 2026-12-06 decision allow"),
        ("a\r\tb", "a\\r\\tb"),
        ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
        ("\x9bc1", "\\x9bc1"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("line\u2028break", "line\\u2028break"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("lone\ud800surrogate", "lone\\ud800surrogate"),
        ("alice\U000e0061\U000e0064", "alice\\U000e0061\\U000e0064"),
        ("Zürich ☃ 日本 🇫🇷", "Zürich ☃ 日本 🇫🇷"),
        (r"args.path.matches('^\d+$')", r"args.path.matches('^\d+$')"),
    ],
)
def test_control_and_invisible_characters_are_escaped_and_nothing_else(raw, shown):
    assert printable(raw) == shown


def test_non_text_is_shown_as_its_str():
    assert printable(None) == "None" and printable(42) == "42"
