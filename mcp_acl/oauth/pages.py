"""The sign-in, consent and error pages: plain HTML, no script.

Every page is sent with a Content-Security-Policy that allows nothing but
its own inline style and its form targets, `frame-ancestors 'none'` and
X-Frame-Options DENY (no clickjacking of the Allow button), and no caching.
All text from clients or users is HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.3rem}label{display:block;margin:.8rem 0 .2rem}"
    "input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}"
    "button{margin:1rem .5rem 0 0;padding:.4rem 1rem}.error{color:#a00}.note{color:#666;font-size:.9rem}"
    "dt{font-weight:bold;margin-top:.5rem}dd{margin:0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_SAFE_SOURCE = re.compile(r"^[a-z][a-z0-9+.-]*://[A-Za-z0-9.\-:\[\]]+$|^[a-z][a-z0-9+.-]*:$")


def redirect_target(redirect_uri: str) -> str | None:
    """The CSP source that lets a form's redirect reach `redirect_uri`, or None.

    Example: "http://127.0.0.1:33418/cb" -> "http://127.0.0.1:33418";
    "cursor://anysphere.cursor/cb" -> "cursor:"
    """
    parts = urlsplit(redirect_uri)
    source = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else f"{parts.scheme}:"
    return source if _SAFE_SOURCE.match(source) else None


def _headers(form_targets: tuple[str, ...]) -> dict[str, str]:
    # form-action also governs where a submitted form may be redirected, so
    # the consent form lists the client's redirect origin.
    targets = " ".join(("'self'", *form_targets))
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action {targets}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }


def _page(title: str, body: str, status: int = 200, form_targets: tuple[str, ...] = ()) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_headers(form_targets))


def sign_in_page(action: str, request_id: str, client_label: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The user-name and password form for one authorization request."""
    message = f'<p class=error role=alert>{escape(error)}</p>' if error else ""
    body = (
        f"<p><strong>{escape(client_label)}</strong> asks to use mcp-acl on your behalf. Sign in first.</p>{message}"
        f'<form method=post action="{escape(action)}">'
        f'<input type=hidden name=request value="{escape(request_id)}">'
        '<label for=username>User name</label>'
        '<input type=text id=username name=username autocomplete=username required autofocus>'
        '<label for=password>Password</label>'
        '<input type=password id=password name=password autocomplete=current-password required>'
        "<button type=submit>Sign in</button></form>"
    )
    return _page("Sign in to mcp-acl", body, status)


def consent_page(
    action: str, request_id: str, *, user: str, client_label: str, client_verified: bool,
    redirect_uri: str, scope: str, resource: str,
) -> HTMLResponse:
    """Ask `user` whether the client may act for them."""
    host = urlsplit(redirect_uri).netloc or redirect_uri
    note = "" if client_verified else (
        '<p class=note>This client registered itself; mcp-acl has not checked its name. '
        "Allow it only if you started this sign-in.</p>"
    )
    body = (
        f"<p>Signed in as <strong>{escape(user)}</strong>.</p>"
        f"<p>Allow <strong>{escape(client_label)}</strong> to use mcp-acl as you?</p>"
        "<dl>"
        f"<dt>Client</dt><dd>{escape(client_label)}</dd>"
        f"<dt>Sends you back to</dt><dd>{escape(host)}</dd>"
        f"<dt>Access</dt><dd>{escape(scope)}: the MCP tools, resources and prompts your grants allow, "
        f"at {escape(resource)}</dd>"
        f"</dl>{note}"
        f'<form method=post action="{escape(action)}">'
        f'<input type=hidden name=request value="{escape(request_id)}">'
        "<button type=submit name=decision value=allow>Allow</button>"
        "<button type=submit name=decision value=deny>Deny</button></form>"
    )
    target = redirect_target(redirect_uri)
    return _page("Allow access?", body, form_targets=(target,) if target else ())


def error_page(message: str, status: int = 400) -> HTMLResponse:
    """A dead end: the request cannot go back to the client (e.g. an unknown redirect URI)."""
    return _page("Sign-in failed", f"<p class=error>{escape(message)}</p>", status)
