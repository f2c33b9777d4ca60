"""What every console page shares: the gateway, the store, the templates, the signed cookies.

Pages render server-side (Jinja2, autoescaped); every response carries a
strict Content-Security-Policy (only this server's own script and style, no
inline code), refuses framing and is never cached.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from mcp_acl.config import Settings
from mcp_acl.console.cookies import SESSION_LIFETIME, ConsoleSession, Signer
from mcp_acl.console.revocation import SignInRevocations
from mcp_acl.gateway.runtime import Gateway
from mcp_acl.printable import printable

HERE = Path(__file__).parent
# The admin target: a principal may use the console when the policy allows it this target.
CONSOLE_TARGET = "admin:console"
CONSOLE_CLIENT = "mcp-acl-console"
SESSION_PURPOSE = "console-session"
NOTE_PURPOSE = "console-note"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on its own forms.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, str) and len(value) >= 19:
        return value[:19].replace("T", " ") + " UTC"
    return "" if value is None else str(value)


def bare_url(url: str) -> str:
    """`url` without user information, query or fragment: where a credential could hide."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" + (" (query not shown)" if parts.query else "")


class Console:
    """The console's shared parts, made once by `console_app`."""

    def __init__(self, settings: Settings, engine: Engine, gateway: Gateway, keys: Any) -> None:
        self.settings, self.engine, self.gateway, self.keys = settings, engine, gateway, keys
        self.signer = Signer()
        # The sign-in token's jti on the gateway's deny-list, and its sign-in: looked up on every request.
        self.revoked = SignInRevocations(engine)
        self.secure = settings.resource_url.startswith("https://")
        # __Host- pins the cookie to this exact origin; it needs https.
        self.cookie = "__Host-mcp_acl_console" if self.secure else "mcp_acl_console"
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "svg"]),
            trim_blocks=True, lstrip_blocks=True,
        )
        # Stored text (names, notes, reasons) may hold control characters: shown escaped, like the CLI does.
        self.templates.filters["p"] = lambda v: "" if v is None else printable(v)
        self.templates.filters["when"] = _when
        self.templates.filters["bare_url"] = bare_url

    def policy(self):
        """The policy the gateway decides on now (brought up to date first)."""
        return self.gateway.invoker.policies.current()

    def render(self, request: Request, name: str, status: int = 200, session: ConsoleSession | None = None, **values: Any) -> Response:
        template = self.templates.get_template(name)
        note = self.signer.read(NOTE_PURPOSE, request.query_params.get("done"))
        values.setdefault("done", note.get("done") if note else None)
        html = template.render(request=request, admin=session, path=request.url.path, **values)
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if session is not None:
            self.set_session(response, session.seen_at(time.time()))
        return response

    def set_session(self, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            self.cookie, self.signer.sign(SESSION_PURPOSE, session.as_value()), path="/", httponly=True,
            samesite="lax", secure=self.secure, max_age=max(int(session.started + SESSION_LIFETIME - time.time()), 0),
        )

    def end_session(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path="/", httponly=True, samesite="lax", secure=self.secure)
