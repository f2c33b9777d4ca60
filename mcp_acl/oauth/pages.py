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
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}"
    "h1{font-size:1.3rem}label{display:block;margin:.8rem 0 .2rem}"
    "input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}"
    "button{margin:1rem .5rem 0 0;padding:.4rem 1rem}.error{color:#a00}.note{color:#555;font-size:.9rem}"
    ".warning{border:2px solid #b45309;background:#fff7e6;color:#222;padding:.6rem .8rem;margin:1rem 0}"
    "dt{font-weight:bold;margin-top:.5rem}dd{margin:0}ul{margin:.2rem 0;padding-left:1.2rem}"
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


@dataclass(frozen=True)
class ClientView:
    """How the pages name a client: its registered name first, its id as a detail."""

    client_id: str
    name: str | None
    verified: bool  # False when it registered itself (RFC 7591): its name is unchecked
    # A client known by its metadata document URL: that URL's origin, which
    # is what vouches for the name (the document's own claims do not).
    origin: str | None = None


@dataclass(frozen=True)
class AccessSummary:
    """What the user's grants (under the client's ceiling) let this client use, from the gateway's own listing."""

    tools: tuple[str, ...]
    resources: tuple[str, ...]
    prompts: tuple[str, ...]
    client_restricted: bool
    limits: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by tool name: the grants' limits


def _client_intro(client: ClientView, lead: str) -> str:
    name = f"<strong>{escape(client.name)}</strong>" if client.name else "<strong>An app with no name</strong>"
    warning = "" if client.verified else (
        "<div class=warning role=alert><strong>Unverified app.</strong> This app registered itself: "
        "mcp-acl has not checked its name, and anyone can use any name. "
        "Continue only if you started this sign-in yourself, from the app you expect.</div>"
    )
    vouched = (
        f"<p class=note>Verified by its origin: <strong>{escape(client.origin)}</strong> "
        "(the name and the addresses it may send you back to are published there).</p>"
    ) if client.origin else ""
    return (
        f"<p>{name} {lead}</p>{vouched}"
        f"<p class=note>Client id: <code>{escape(client.client_id)}</code></p>{warning}"
    )


def sign_in_page(
    action: str, request_id: str, client: ClientView, error: str | None = None, status: int = 200,
    retry_after: int | None = None,
) -> HTMLResponse:
    """The user-name and password form for one authorization request (429 with Retry-After in a back-off)."""
    message = f'<p class=error role=alert>{escape(error)}</p>' if error else ""
    body = (
        _client_intro(client, "asks to use mcp-acl on your behalf. Sign in first.") + message +
        f'<form method=post action="{escape(action)}">'
        f'<input type=hidden name=request value="{escape(request_id)}">'
        '<label for=username>User name</label>'
        '<input type=text id=username name=username autocomplete=username required autofocus>'
        '<label for=password>Password</label>'
        '<input type=password id=password name=password autocomplete=current-password required>'
        "<button type=submit>Sign in</button></form>"
    )
    response = _page("Sign in to mcp-acl", body, status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _names(kind: str, names: tuple[str, ...], limits: dict[str, tuple[str, ...]] | None = None) -> str:
    if not names:
        return ""
    limits = limits or {}
    items = "".join(
        f"<li><code>{escape(n)}</code>" + (f": {escape('; '.join(limits[n]))}" if limits.get(n) else "") + "</li>"
        for n in names
    )
    return f"<dt>{escape(kind)}</dt><dd><ul>{items}</ul></dd>"


def _access(summary: AccessSummary | None) -> str:
    if summary is None:
        return (
            "<p>mcp-acl could not work out what your grants allow right now. "
            "Every call is still checked against them when it is made.</p>"
        )
    ceiling = " and this app's own grants (it never gets more than both allow)" if summary.client_restricted else ""
    lead = f"With your current grants{ceiling}, this app will be able to use"
    listed = _names("Tools", summary.tools, summary.limits) + _names("Resources", summary.resources) + _names("Prompts", summary.prompts)
    if not listed:
        return f"<p>{lead} nothing yet.</p><p class=note>An administrator can grant access later.</p>"
    return (
        f"<p>{lead}:</p><dl>{listed}</dl>"
        "<p class=note>Every call is checked again when it is made: a grant taken away stops the very next call.</p>"
    )


def consent_page(
    action: str, request_id: str, *, user: str, client: ClientView, redirect_uri: str, scope: str,
    resource: str, access: AccessSummary | None,
) -> HTMLResponse:
    """Ask `user` whether the client may act for them, saying what it could then use."""
    host = urlsplit(redirect_uri).netloc or redirect_uri
    body = (
        f"<p>Signed in as <strong>{escape(user)}</strong>.</p>"
        + _client_intro(client, "asks to use mcp-acl as you.")
        + _access(access)
        + "<dl>"
        f"<dt>Sends you back to</dt><dd>{escape(host)}</dd>"
        f"<dt>Scope</dt><dd>{escape(scope)} at {escape(resource)}</dd>"
        "</dl>"
        f'<form method=post action="{escape(action)}">'
        f'<input type=hidden name=request value="{escape(request_id)}">'
        "<button type=submit name=decision value=allow>Allow</button>"
        "<button type=submit name=decision value=deny>Deny</button></form>"
    )
    target = redirect_target(redirect_uri)
    return _page("Allow access?", body, form_targets=(target,) if target else ())


def error_page(message: str, status: int = 400, next_step: str | None = None) -> HTMLResponse:
    """A dead end: the request cannot go back to the client (e.g. an unknown redirect URI)."""
    step = f"<p><strong>What to do next:</strong> {escape(next_step)}</p>" if next_step else ""
    return _page("Sign-in failed", f"<p class=error>{escape(message)}</p>{step}", status)
