"""Upstream MCP servers as stored rows: validation, add, list, show, remove.

One place the CLI (and later a console) changes upstreams through. Each
change bumps the policy revision, as an upstream's tools change what the
catalogue can offer. Credentials are references only: a header, an
environment variable for a command, or an OAuth client secret is `env:VAR`
or `file:/path`, resolved by the gateway when it connects, so no secret
value is ever stored or exported.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Connection, delete, insert, select

from mcp_acl._bundled import bundled_dir
from mcp_acl.store import tables as t
from mcp_acl.store.admin import AdminError, PolicyAdmin, utcnow

DEFAULT_TIMEOUT_SECONDS = 30.0
# "http" is Streamable HTTP; "sse" the legacy HTTP+SSE transport (a URL too).
TRANSPORTS = ("http", "sse", "stdio")
URL_TRANSPORTS = ("http", "sse")
# A namespace is one grant-safe word: `github` gives tools `github.create_issue`.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_REFERENCE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class UpstreamOAuth:
    """How the gateway gets bearer tokens for an HTTP upstream from an authorization server.

    `client_secret` is a reference (`env:VAR`, `file:/path`), never a value.
    Without `token_url` the token endpoint is discovered from the upstream
    (RFC 9728, then RFC 8414). With `token_exchange`, each caller's access
    token is exchanged (RFC 8693) for a token of its own towards the upstream.
    """

    client_id: str
    client_secret: str
    token_url: str | None = None
    scope: str | None = None
    resource: str | None = None
    audience: str | None = None
    token_exchange: bool = False

    def portable(self) -> dict:
        """As stored and exported: the fields that are set (the secret as its reference)."""
        entry: dict = {"client_id": self.client_id, "client_secret": self.client_secret}
        for key in ("token_url", "scope", "resource", "audience"):
            if getattr(self, key):
                entry[key] = getattr(self, key)
        if self.token_exchange:
            entry["token_exchange"] = True
        return entry


OAUTH_KEYS = ("client_id", "client_secret", "token_url", "scope", "resource", "audience", "token_exchange")


def builtin_namespaces() -> frozenset[str]:
    """The namespaces the built-in tool modules use (`files`, `sql`): one per module file."""
    return frozenset(p.stem for p in bundled_dir("tools", "files.py").glob("*.py") if not p.name.startswith("_"))


@dataclass(frozen=True)
class Upstream:
    """One upstream: where it is (a URL, or a command to start), its credential references and timeout."""

    name: str
    transport: str
    url: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    oauth: UpstreamOAuth | None = None
    created_by: str | None = None
    created_at: datetime | None = None

    def where(self) -> str:
        """The URL, or the command line, for listings."""
        return self.url if self.transport in URL_TRANSPORTS else " ".join([self.command or "", *self.args])

    def portable(self) -> dict:
        """The entry as `policy export` writes it (references only; no timestamps)."""
        entry: dict = {"name": self.name}
        if self.transport in URL_TRANSPORTS:
            entry["url"] = self.url
            if self.transport == "sse":
                entry["transport"] = "sse"
        else:
            entry["command"] = [self.command, *self.args]
        if self.env:
            entry["env"] = dict(self.env)
        if self.headers:
            entry["headers"] = dict(self.headers)
        if self.oauth is not None:
            entry["oauth"] = self.oauth.portable()
        entry["timeout"] = self.timeout_seconds
        return entry


def check_upstream(up: Upstream) -> None:
    """Raise AdminError with one sentence when `up` cannot be stored as given."""
    if not _NAME.match(up.name):
        raise AdminError(f"upstream name {up.name!r} must be lower-case letters, digits, '-' or '_', starting with a letter")
    if up.name in builtin_namespaces():
        raise AdminError(f"upstream name {up.name!r} collides with the built-in tools {up.name}.*; pick another name")
    if up.transport in URL_TRANSPORTS:
        if up.command or up.args:
            raise AdminError("give either --url or --command, not both")
        parts = urlsplit(up.url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AdminError(f"--url must be an http:// or https:// URL, not {up.url!r}")
        if up.env:
            raise AdminError("--env is for a --command upstream; an HTTP upstream takes --header")
    elif up.transport == "stdio":
        if up.url:
            raise AdminError("give either --url or --command, not both")
        if not up.command:
            raise AdminError("--command needs the program to run, e.g. --command 'python server.py'")
        if up.headers:
            raise AdminError("--header is for a --url upstream; a command upstream takes --env")
    else:
        raise AdminError("give one of --url URL or --command 'CMD ARGS…'")
    for what, pairs in (("--header", up.headers), ("--env", up.env)):
        for key, value in pairs.items():
            if not _KEY.match(key):
                raise AdminError(f"{what} name {key!r} must be letters, digits, '-' or '_'")
            if not _REFERENCE.match(value):
                raise AdminError(
                    f"{what} {key} must be a reference, env:VAR or file:/path (values are never stored), not a literal value"
                )
    if up.oauth is not None:
        _check_oauth(up)
    if not (math.isfinite(up.timeout_seconds) and up.timeout_seconds > 0):
        raise AdminError(f"--timeout must be a number of seconds above 0, not {up.timeout_seconds!r}")


def _check_oauth(up: Upstream) -> None:
    oauth = up.oauth
    if up.transport != "http":
        raise AdminError("--oauth-* options are for a --url upstream; a command upstream takes --env")
    if not oauth.client_id or not oauth.client_id.isprintable() or oauth.client_id.strip() != oauth.client_id:
        raise AdminError("--oauth-client-id must be the client's id, printable and without surrounding spaces")
    if not _REFERENCE.match(oauth.client_secret or ""):
        raise AdminError(
            "--oauth-client-secret must be a reference, env:VAR or file:/path (values are never stored), not a literal value"
        )
    for option, value in (("--oauth-token-url", oauth.token_url), ("--oauth-resource", oauth.resource)):
        parts = urlsplit(value or "")
        if value is not None and (parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment):
            raise AdminError(f"{option} must be an http:// or https:// URL without a #fragment, not {value!r}")
    for option, value in (("--oauth-scope", oauth.scope), ("--oauth-audience", oauth.audience)):
        if value is not None and (not value.strip() or not value.isprintable()):
            raise AdminError(f"{option} must be printable text, not {value!r}")
    if oauth.token_exchange and not oauth.token_url:
        # Discovery would let the upstream choose where callers' tokens are sent.
        raise AdminError("--oauth-token-exchange needs --oauth-token-url: callers' tokens are only sent to a token endpoint you name")
    if any(key.lower() == "authorization" for key in up.headers):
        raise AdminError("give either an Authorization --header or --oauth-client-id, not both")


def _oauth_json(oauth: UpstreamOAuth | None) -> str | None:
    return json.dumps(oauth.portable()) if oauth is not None else None


def _oauth_from_json(raw: str | None) -> UpstreamOAuth | None:
    if not raw:
        return None
    data = json.loads(raw)
    return UpstreamOAuth(**{key: data[key] for key in OAUTH_KEYS if key in data})


def _row(up: Upstream, actor: str | None) -> dict:
    return {
        "name": up.name, "transport": up.transport, "url": up.url, "command": up.command,
        "args": json.dumps(list(up.args)), "env": json.dumps(dict(up.env)), "headers": json.dumps(dict(up.headers)),
        "timeout_seconds": float(up.timeout_seconds), "oauth": _oauth_json(up.oauth), "created_by": actor, "created_at": utcnow(),
    }


def _from_row(r) -> Upstream:
    return Upstream(
        name=r.name, transport=r.transport, url=r.url, command=r.command, args=tuple(json.loads(r.args)),
        env=json.loads(r.env), headers=json.loads(r.headers), timeout_seconds=r.timeout_seconds,
        oauth=_oauth_from_json(r.oauth), created_by=r.created_by, created_at=r.created_at,
    )


def add_upstream(admin: PolicyAdmin, up: Upstream, conn: Connection | None = None) -> None:
    """Store `up` (checked first); an existing name raises AdminError and nothing is written."""
    with admin.joined_change(conn) as c:
        check_new_upstream(c, up)
        c.execute(insert(t.upstreams).values(**_row(up, admin.actor)))


def check_new_upstream(conn: Connection, up: Upstream) -> None:
    """`check_upstream`, and that the name is free; raises AdminError (used before connecting to it, too)."""
    check_upstream(up)
    if conn.execute(select(t.upstreams.c.name).where(t.upstreams.c.name == up.name)).first() is not None:
        raise AdminError(f"upstream {up.name!r} already exists (remove it first with `mcp-acl upstream remove {up.name}`)")


def remove_upstream(admin: PolicyAdmin, name: str) -> None:
    """Remove the upstream called `name`; an unknown name raises AdminError."""
    with admin.change([("upstream", name)]) as c:
        if c.execute(delete(t.upstreams).where(t.upstreams.c.name == name)).rowcount == 0:
            raise AdminError(unknown_upstream(name))


def list_upstreams(conn: Connection) -> list[Upstream]:
    """Every stored upstream, by name."""
    return [_from_row(r) for r in conn.execute(select(t.upstreams).order_by(t.upstreams.c.name))]


def get_upstream(conn: Connection, name: str) -> Upstream:
    """The upstream called `name`; raises AdminError when there is none."""
    row = conn.execute(select(t.upstreams).where(t.upstreams.c.name == name)).first()
    if row is None:
        raise AdminError(unknown_upstream(name))
    return _from_row(row)


def unknown_upstream(name: str) -> str:
    """The one wording for an upstream that is not stored."""
    return f"upstream {name!r} does not exist (see `mcp-acl upstream list`)"


def oauth_from_options(*, client_id: str | None, client_secret: str | None, token_exchange: bool = False, **rest: str | None) -> UpstreamOAuth | None:
    """The `--oauth-*` options as settings (None when none is given); a partial set raises AdminError."""
    if client_id is None and client_secret is None and not token_exchange and not any(v is not None for v in rest.values()):
        return None
    if client_id is None or client_secret is None:
        raise AdminError("OAuth towards an upstream needs both --oauth-client-id and --oauth-client-secret env:VAR|file:/path")
    return UpstreamOAuth(client_id=client_id, client_secret=client_secret, token_exchange=token_exchange, **rest)


def parse_pairs(items: Sequence[str], what: str) -> dict[str, str]:
    """`K=env:VAR` options as a dict; a missing `=` raises AdminError."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AdminError(f"{what} takes NAME=env:VAR or NAME=file:/path, not {item!r}")
        found[key.strip()] = value.strip()
    return found


def upstream_from_entry(value: object, path: str) -> Upstream:
    """An `upstreams:` entry of a policy file as an Upstream (checked); raises FileError naming `path`."""
    from mcp_acl.store._yaml_fields import FileError, mapping, sequence, text

    entry = mapping(value, path, ("name", "url", "transport", "command", "env", "headers", "oauth", "timeout"), ("name",))
    command = [text(v, f"{path}.command[{i}]") for i, v in enumerate(sequence(entry.get("command"), f"{path}.command"))]
    pairs = {}
    for key in ("env", "headers"):
        raw = entry.get(key) or {}
        if not isinstance(raw, dict):
            raise FileError(f"{path}.{key}: expected a mapping of NAME: env:VAR")
        pairs[key] = {str(k): text(v, f"{path}.{key}.{k}") for k, v in raw.items()}
    timeout = entry.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise FileError(f"{path}.timeout: expected a number of seconds, not {timeout!r}")
    url = text(entry.get("url"), f"{path}.url", optional=True)
    # Absent for Streamable HTTP and stdio (as exported before "sse" existed); "sse" for the legacy transport.
    transport = text(entry.get("transport"), f"{path}.transport", optional=True)
    if transport is not None and transport not in (URL_TRANSPORTS if url else ("stdio",)):
        fits = " or ".join(URL_TRANSPORTS if url else ("stdio",))
        raise FileError(f"{path}.transport: expected {fits} for an entry with {'a url' if url else 'a command'}, not {transport!r}")
    up = Upstream(
        name=text(entry["name"], f"{path}.name"), transport=transport or ("http" if url else ("stdio" if command else "")),
        url=url, command=command[0] if command else None, args=tuple(command[1:]),
        env=pairs["env"], headers=pairs["headers"], timeout_seconds=float(timeout),
        oauth=_oauth_from_entry(entry.get("oauth"), f"{path}.oauth"),
    )
    try:
        check_upstream(up)
    except AdminError as exc:
        raise FileError(f"{path}: {exc}") from None
    return up


def _oauth_from_entry(value: object, path: str) -> UpstreamOAuth | None:
    """An entry's `oauth:` mapping (references only), or None when it has none."""
    from mcp_acl.store._yaml_fields import flag, mapping, text

    if value is None:
        return None
    entry = mapping(value, path, OAUTH_KEYS, ("client_id", "client_secret"))
    exchange = flag(entry.get("token_exchange"), f"{path}.token_exchange")
    fields = {key: text(entry.get(key), f"{path}.{key}", optional=key not in ("client_id", "client_secret")) for key in OAUTH_KEYS[:-1]}
    return UpstreamOAuth(**fields, token_exchange=exchange)
