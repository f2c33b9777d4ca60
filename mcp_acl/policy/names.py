"""Principals (who a grant is for) and targets (what it covers).

    >>> parse_principal("role:analyst")
    Principal(kind='role', name='analyst')
    >>> parse_target_pattern("tool:files.*").matches("tool:files.read")
    True

Target patterns are globs: `*` stands for any run of characters (`/` and `.`
included), `?` for exactly one; every other character stands for itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mcp_acl.policy.model import PolicyError

PRINCIPAL_KINDS = ("user", "role", "client")
# `admin:` targets are decided for the web console (e.g. admin:console); no catalogue lists them.
TARGET_KINDS = ("tool", "resource", "prompt", "admin")
_WILDCARDS = frozenset("*?")


def _check_name(name: str, what: str, text: str) -> None:
    if not name:
        raise PolicyError(f"{what} {text!r} has an empty name")
    # Every white-space character but the plain space is also unprintable.
    if " " in name or not name.isprintable():
        raise PolicyError(f"{what} {text!r} contains white space or control characters")


@dataclass(frozen=True, slots=True)
class Principal:
    """`user:<subject>`, `role:<name>` or `client:<client_id>`."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_principal(text: str) -> Principal:
    """Parse `kind:name`; raise PolicyError for an unknown kind or a bad name."""
    kind, sep, name = text.partition(":")
    if not sep:
        raise PolicyError(
            f"principal {text!r} needs a kind: user:NAME, role:NAME or client:CLIENT_ID"
        )
    if kind not in PRINCIPAL_KINDS:
        raise PolicyError(
            f"unknown principal kind {kind!r} in {text!r}: use user:, role: or client:"
        )
    _check_name(name, "principal", text)
    if _WILDCARDS & set(name):
        raise PolicyError(f"principal {text!r} may not contain * or ?")
    return Principal(kind, name)


def _split_target(text: str) -> tuple[str, str]:
    kind, sep, name = text.partition(":")
    if not sep:
        raise PolicyError(
            f"target {text!r} needs a kind: tool:NAME, resource:URI or prompt:NAME"
        )
    if kind not in TARGET_KINDS:
        raise PolicyError(
            f"unknown target kind {kind!r} in {text!r}: use tool:, resource:, prompt: or admin:"
        )
    _check_name(name, "target", text)
    return kind, name


def parse_target(text: str) -> tuple[str, str]:
    """Parse a concrete target `kind:name` (no wildcards) into (kind, name)."""
    kind, name = _split_target(text)
    if _WILDCARDS & set(name):
        raise PolicyError(f"target {text!r} names a pattern; a concrete target has no * or ?")
    return kind, name


# Answers of target_problem(), which every decision asks; a plain dict is a
# cheaper memo than lru_cache here, and it starts afresh when full.
_PROBLEMS: dict[str, str | None] = {}
_PROBLEMS_SIZE = 65536


def target_problem(text: str) -> str | None:
    """Why `text` is not a concrete target, or None when it is one (memoised).

    >>> target_problem("tool:files.read") is None
    True
    """
    try:
        return _PROBLEMS[text]
    except KeyError:
        pass
    try:
        parse_target(text)
        problem = None
    except PolicyError as exc:
        problem = str(exc)
    if len(_PROBLEMS) >= _PROBLEMS_SIZE:
        _PROBLEMS.clear()
    _PROBLEMS[text] = problem
    return problem


@dataclass(frozen=True, slots=True)
class TargetPattern:
    """A target glob, split into its kind, its literal prefix and its matcher."""

    text: str
    kind: str
    name: str
    # The characters before the first wildcard: a cheap pre-filter, and the
    # whole name when the pattern has no wildcard at all.
    prefix: str
    exact: bool

    def matches(self, target: str) -> bool:
        """True when the concrete target `kind:name` falls under this pattern."""
        kind, _, name = target.partition(":")
        return kind == self.kind and self.matches_name(name)

    def matches_name(self, name: str) -> bool:
        """True when a name of this pattern's kind falls under the pattern."""
        if self.exact:
            return name == self.name
        return name.startswith(self.prefix) and glob_regex(self.name).fullmatch(name) is not None


@lru_cache(maxsize=65536)
def glob_regex(glob: str) -> re.Pattern[str]:
    """The regular expression for a glob, e.g. `a.*` → `a\\..*` (DOTALL).

    >>> glob_regex("a.*").fullmatch("a.b/c") is not None
    True
    """
    parts = []
    for ch in glob:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def parse_target_pattern(text: str) -> TargetPattern:
    """Parse `kind:glob`, e.g. `tool:files.*` or `resource:file:///reports/*`."""
    kind, name = _split_target(text)
    cut = min((name.index(w) for w in _WILDCARDS if w in name), default=len(name))
    return TargetPattern(
        text=text, kind=kind, name=name, prefix=name[:cut], exact=cut == len(name)
    )
