"""Lists of allowed host names, as an administrator writes them in a setting.

The syntax is deliberately small, so that what a list admits is plain to
read: comma-separated items, each either an exact host name (`claude.ai`)
or `*.` and a domain of at least two labels (`*.example.com`), which admits
every name below that domain but not the domain itself. No scheme, port,
path or other wildcard. Names are compared case-insensitively, as written
in URLs (punycode for international names); IPv4 addresses may be listed
as exact hosts only (a `*.` domain never admits an address).

Example: "claude.ai, *.example.com" -> ("claude.ai", "*.example.com");
"*.example.com" admits "a.example.com" and "a.b.example.com", not "example.com".
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EXAMPLE = "claude.ai,*.example.com"


def _is_host_name(name: str) -> bool:
    return len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def _is_address(name: str) -> bool:
    # No top-level domain is all digits: such a name is an IPv4 address (maybe shortened, as 127.1).
    return name.rsplit(".", 1)[-1].isdigit()


def parse_host_patterns(raw: str, setting: str) -> tuple[str, ...]:
    """The patterns of `raw`; ValueError naming `setting` and the first bad item."""
    patterns: list[str] = []
    for item in raw.split(","):
        pattern = item.strip().lower()
        suffix = pattern[2:] if pattern.startswith("*.") else pattern
        if not pattern or not _is_host_name(suffix):
            raise ValueError(f"{setting}: {item.strip()!r} is not a host name or *.domain (e.g. {EXAMPLE})")
        if pattern.startswith("*.") and "." not in suffix:
            raise ValueError(f"{setting}: {pattern!r} is too broad: name a domain of two labels or more, e.g. *.example.com")
        if pattern.startswith("*.") and _is_address(suffix):
            raise ValueError(f"{setting}: {pattern!r} would match addresses: list an IP address on its own, without *.")
        patterns.append(pattern)
    return tuple(dict.fromkeys(patterns))


def host_allowed(host: str | None, patterns: tuple[str, ...]) -> bool:
    """Whether `host` is one of `patterns` or below one of its `*.` domains."""
    host = (host or "").lower()
    if not _is_host_name(host):
        return False  # e.g. ".example.com", which would otherwise end like a listed domain
    # A `*.` domain admits names only: never an address whose last numbers happen to end like it.
    return any(host == p or (p.startswith("*.") and not _is_address(host) and host.endswith(p[1:])) for p in patterns)
