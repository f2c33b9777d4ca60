"""The console's signed cookies: the admin session and the sign-in in progress.

A cookie carries JSON signed with HMAC-SHA256, so the browser can hold it
but not change it. The key is `MCP_ACL_CONSOLE_SECRET` (set the same value on
every replica behind one address), else a random key made when the process
starts: sessions then end with the process. Nothing secret is put in a cookie
(no token, no password): only who signed in, the sign-in token's id (`jti`)
and expiry, when, and the CSRF token. The admin's roles are not kept: the
guard resolves them from the policy on every request (guard.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass, replace

SECRET_ENV = "MCP_ACL_CONSOLE_SECRET"
# A session ends this long after sign-in whatever happens, or after this long unused.
SESSION_LIFETIME = 8 * 3600
SESSION_IDLE = 30 * 60
# The sign-in round trip through the authorization server must end within this.
SIGN_IN_LIFETIME = 10 * 60


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks cookie values; `purpose` keeps one kind of cookie from passing as another."""

    def __init__(self, key: bytes | None = None) -> None:
        configured = os.environ.get(SECRET_ENV)
        if key is None and configured:
            key = hashlib.sha256(configured.encode()).digest()
        self._key = key or secrets.token_bytes(32)

    def sign(self, purpose: str, value: dict) -> str:
        body = _b64(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())
        return body + "." + self._mac(purpose, body)

    def read(self, purpose: str, cookie: str | None) -> dict | None:
        """The signed value, or None when missing, malformed or not signed by this key for `purpose`."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            value = json.loads(_unb64(body))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\n{body}".encode(), hashlib.sha256).digest())


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in administrator, as the session cookie holds it.

    `jti` is the sign-in token's id, looked up on the deny-list on every
    request (None when the issuer's tokens carry none). `claim_roles` are the
    roles an external provider's token claim gave (MCP_ACL_ROLES_CLAIM; never
    set with the embedded issuer): the provider's word holds until the
    token's `token_expires`, as it would on /mcp, and not a moment longer.
    """

    subject: str
    client_id: str
    issuer: str
    jti: str | None
    token_expires: float
    claim_roles: tuple[str, ...]
    csrf: str
    started: float
    seen: float

    def live(self, now: float) -> bool:
        """Within the session's lifetime and not idle too long."""
        return now < self.started + SESSION_LIFETIME and now < self.seen + SESSION_IDLE

    def roles_claimed(self, now: float) -> frozenset[str]:
        """The token claim's roles while the sign-in token is valid, else none."""
        return frozenset(self.claim_roles) if now < self.token_expires else frozenset()

    def seen_at(self, now: float) -> "ConsoleSession":
        return replace(self, seen=now)

    def as_value(self) -> dict:
        value = asdict(self)
        value["claim_roles"] = list(self.claim_roles)
        return value

    @classmethod
    def from_value(cls, value: dict | None) -> "ConsoleSession | None":
        if value is None:
            return None
        try:
            jti = value["jti"]
            return cls(
                str(value["subject"]), str(value["client_id"]), str(value["issuer"]),
                None if jti is None else str(jti), float(value["token_expires"]),
                tuple(str(r) for r in value["claim_roles"]), str(value["csrf"]), float(value["started"]), float(value["seen"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
