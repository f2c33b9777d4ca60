"""Settings read from the environment (and overridden by command-line options)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from mcp_acl.host_patterns import parse_host_patterns

DEFAULT_RESOURCE_URL = "http://127.0.0.1:8000/mcp"


class SettingsError(ValueError):
    """An `MCP_ACL_*` variable with a value that means nothing (the message names it); never replaced by a default."""


def data_home() -> Path:
    """`MCP_ACL_HOME`, or `~/.local/share/mcp-acl`: where the default database lives."""
    home = os.environ.get("MCP_ACL_HOME")
    return Path(home).expanduser() if home else Path.home() / ".local" / "share" / "mcp-acl"


def database_url(override: str | None = None) -> str:
    """`--database`, else `MCP_ACL_DATABASE_URL`, else an SQLite file in the data home."""
    if override:
        return override
    url = os.environ.get("MCP_ACL_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_home() / 'mcp-acl.db'}"


def database_source(override: str | None = None) -> str:
    """Where `database_url(override)` came from, for messages: the option, a variable, or the default.

    Example: with only MCP_ACL_HOME=/srv/acl set -> "from MCP_ACL_HOME=/srv/acl"
    """
    env_url = os.environ.get("MCP_ACL_DATABASE_URL")
    # Typer fills --database from MCP_ACL_DATABASE_URL, so an override equal to it came from there.
    if override and override != env_url:
        return "from --database"
    if override or env_url:
        return "from MCP_ACL_DATABASE_URL"
    if os.environ.get("MCP_ACL_HOME"):
        return f"from MCP_ACL_HOME={os.environ['MCP_ACL_HOME']}"
    return "the default, as MCP_ACL_HOME is not set"


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment, in one place."""

    database_url: str
    resource_url: str = DEFAULT_RESOURCE_URL
    issuer: str | None = None
    jwks_url: str | None = None
    roles_claim: str | None = None
    required_scope: str = "mcp"
    tools_path: tuple[Path, ...] = ()
    # The embedded issuer's URL (`iss` of the tokens it mints); None means
    # the origin of `resource_url`, see `embedded_issuer_url`.
    issuer_url: str | None = None
    # `typ` header values accepted from an external issuer (IdPs such as
    # Keycloak and Auth0 send "JWT"); the embedded issuer's are always at+jwt.
    token_types: tuple[str, ...] = ("at+jwt", "jwt")
    # Seconds of clock skew tolerated on exp/nbf/iat (at most 60).
    clock_leeway: int = 30
    # Client ID Metadata Documents (oauth/cimd.py): fetching from private or
    # loopback addresses, and (for tests on loopback, only with the former)
    # plain http; the whole fetch's time limit in seconds.
    cimd_allow_private: bool = False
    cimd_allow_http: bool = False
    cimd_timeout: float = 5.0
    cimd_ca_file: str | None = None  # a CA bundle for those fetches instead of the system's
    # Whether https client_ids are accepted at all (MCP_ACL_CIMD), and from
    # which hosts (MCP_ACL_CIMD_ALLOWED_HOSTS; empty: any, within the limits above).
    cimd: bool = True
    cimd_allowed_hosts: tuple[str, ...] = ()
    # Dynamic client registration, RFC 7591 (MCP_ACL_REGISTRATION).
    registration: bool = True

    @property
    def embedded_issuer(self) -> bool:
        """True when mcp-acl issues its own tokens (no `MCP_ACL_ISSUER` set)."""
        return self.issuer is None

    @property
    def embedded_issuer_url(self) -> str:
        """`MCP_ACL_ISSUER_URL`, else the origin of the resource URL (http://127.0.0.1:8000)."""
        if self.issuer_url:
            return self.issuer_url
        parts = urlsplit(self.resource_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def expected_issuer(self) -> str:
        """The `iss` every accepted token must carry: the external issuer, else the embedded one."""
        return self.issuer or self.embedded_issuer_url

    @classmethod
    def from_env(cls, database: str | None = None) -> "Settings":
        """Read the `MCP_ACL_*` variables."""
        env = os.environ
        tools = tuple(Path(p).expanduser() for p in env.get("MCP_ACL_TOOLS_PATH", "").split(os.pathsep) if p)
        return cls(
            database_url=database_url(database),
            resource_url=env.get("MCP_ACL_RESOURCE_URL", DEFAULT_RESOURCE_URL),
            issuer=env.get("MCP_ACL_ISSUER") or None,
            jwks_url=env.get("MCP_ACL_JWKS_URL") or None,
            roles_claim=env.get("MCP_ACL_ROLES_CLAIM") or None,
            required_scope=env.get("MCP_ACL_SCOPE", "mcp"),
            tools_path=tools,
            issuer_url=env.get("MCP_ACL_ISSUER_URL") or None,
            token_types=tuple(t.strip() for t in env.get("MCP_ACL_TOKEN_TYPES", "at+jwt,jwt").split(",") if t.strip()),
            clock_leeway=_int_env("MCP_ACL_CLOCK_LEEWAY", 30),
            cimd_allow_private=env.get("MCP_ACL_CIMD_ALLOW_PRIVATE") == "1",
            cimd_allow_http=env.get("MCP_ACL_CIMD_ALLOW_HTTP") == "1",
            cimd_ca_file=env.get("MCP_ACL_CIMD_CA_FILE") or None,
            cimd=_switch_env("MCP_ACL_CIMD"),
            cimd_allowed_hosts=_hosts_env("MCP_ACL_CIMD_ALLOWED_HOSTS"),
            registration=_switch_env("MCP_ACL_REGISTRATION"),
        )


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of seconds, not {raw!r}") from None


def _switch_env(name: str) -> bool:
    # Unset means on; otherwise only the two words: a typo such as "of" or "false" must not leave a feature on unnoticed.
    raw = os.environ.get(name, "").strip()
    if not raw:
        return True
    if raw.lower() in ("on", "off"):
        return raw.lower() == "on"
    raise SettingsError(f"{name} must be on or off, not {raw!r}")


def _hosts_env(name: str) -> tuple[str, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return ()
    try:
        return parse_host_patterns(raw, name)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
