"""Which redirect URIs a client may register, and which requests match them.

Rules (RFC 6749 §3.1.2, RFC 8252 for native apps, OAuth 2.1 exact matching):

- a registered URI is `https`, `http` on a loopback host (127.0.0.1, [::1],
  localhost), or a private-use scheme such as `cursor://…` or
  `com.example.app:/cb`; never a fragment, user info, or a scheme a browser
  would run (`javascript:`, `data:`, `file:` …);
- a request's `redirect_uri` must equal a registered one character for
  character, with one exception from RFC 8252 §7.3: for `http` on a loopback
  IP literal (127.0.0.1 or [::1]) the port may differ, because native apps
  listen on whatever port the system gives them. Everything else (scheme,
  host, path, query) must still be identical.

    >>> matches("http://127.0.0.1:51234/cb", ["http://127.0.0.1:8400/cb"])
    True
    >>> matches("http://localhost:51234/cb", ["http://localhost:8400/cb"])
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_LENGTH = 2000
MAX_COUNT = 10
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_PORT_FREE_HOSTS = frozenset({"127.0.0.1", "::1"})  # RFC 8252 §7.3: IP literals only
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
# Schemes that a browser would render or run rather than hand to an app.
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss"})


class RedirectUriError(ValueError):
    """A redirect URI that may not be registered."""


def check_registrable(uri: str) -> None:
    """Raise RedirectUriError unless `uri` may be registered as a redirect URI."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_LENGTH:
        raise RedirectUriError("a redirect URI must be a non-empty string of at most 2000 characters")
    if any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise RedirectUriError(f"redirect URI {uri!r} contains white space or control characters")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise RedirectUriError(f"redirect URI {uri!r} is not a valid URI") from exc
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme):
        raise RedirectUriError(f"redirect URI {uri!r} has no scheme")
    if parts.fragment or "#" in uri:
        raise RedirectUriError(f"redirect URI {uri!r} may not have a fragment")
    if "@" in parts.netloc:
        raise RedirectUriError(f"redirect URI {uri!r} may not carry user information")
    if scheme in _FORBIDDEN_SCHEMES:
        raise RedirectUriError(f"redirect URI {uri!r} uses the {scheme}: scheme, which is not allowed")
    if scheme in ("http", "https") and not parts.hostname:
        raise RedirectUriError(f"redirect URI {uri!r} has no host")
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise RedirectUriError(f"redirect URI {uri!r} uses http on a host that is not loopback: use https")


def check_registrable_list(uris: object) -> list[str]:
    """Validate a list of redirect URIs for registration; return it as a list of strings."""
    if not isinstance(uris, list) or not uris:
        raise RedirectUriError("redirect_uris must be a non-empty list")
    if len(uris) > MAX_COUNT:
        raise RedirectUriError(f"at most {MAX_COUNT} redirect URIs may be registered")
    for uri in uris:
        check_registrable(uri)
    return list(dict.fromkeys(uris))


def _without_port(uri: str) -> tuple[str, str, str, str] | None:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - a malformed port disqualifies the URI
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname not in _PORT_FREE_HOSTS or "@" in parts.netloc or parts.fragment:
        return None
    return (parts.scheme, parts.hostname, parts.path, parts.query)


def matches(requested: str, registered: Iterable[str]) -> bool:
    """Whether `requested` may be used given the `registered` redirect URIs."""
    registered = list(registered)
    if requested in registered:
        return True
    key = _without_port(requested)
    return key is not None and any(_without_port(uri) == key for uri in registered)
