"""Who may use the console: a signed-in principal the policy allows `admin:console`, asked on every request.

The admin check is a decision like any tool call's: the same engine, the
same policy revision the gateway decides on, and an audit row for each
sign-in and each change. The decision is taken again on every page and
every change, so revoking the admin grant (or disabling the user) ends
console access at the next click. Every POST must carry the session's
CSRF token and, when the browser sends one, this server's Origin.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_acl.audit import AuditLog
from mcp_acl.console.context import CONSOLE_TARGET, SECURITY_HEADERS, SESSION_PURPOSE, Console
from mcp_acl.console.cookies import ConsoleSession
from mcp_acl.policy import Decision, Identity, decide
from mcp_acl.store import PolicyAdmin

MAX_FORM = 64 * 1024
Page = Callable[[Console, Request, ConsoleSession], Awaitable[Response]]
Action = Callable[[Console, Request, ConsoleSession, dict[str, str]], Awaitable[Response]]


class ConsoleRefused(Exception):
    """The admin check refused (the grant was revoked, the user disabled): nothing was changed."""


def identity_of(session: ConsoleSession) -> Identity:
    """The identity the session was signed in as (the token's claims, kept in the cookie)."""
    return Identity(session.subject, session.client_id, frozenset(session.roles), session.issuer)


def decide_admin(console: Console, identity: Identity) -> Decision:
    """May `identity` use the console now? The gateway's own decision on `admin:console`."""
    return decide(console.policy(), identity, CONSOLE_TARGET, {}, datetime.now(timezone.utc))


def audit_admin(console: Console, identity: Identity, action: str, decision: Decision, args: dict | None, what: str | None = None) -> int:
    """One audit row for a console sign-in or change, with the admin's identity; `what` says what was asked."""
    if what:
        decision = replace(decision, reason=f"{what}: {decision.reason}")
    return AuditLog(console.engine).record_decision(
        session_id=None, identity=identity, action=action, target=CONSOLE_TARGET, args=args, decision=decision, latency_ms=0.0,
    )


def audited_change(console: Console, session: ConsoleSession, action: str, what: str, args: dict[str, Any], run: Callable[[PolicyAdmin], Any]) -> Any:
    """Decide, audit, then make the change through PolicyAdmin (as the CLI does) and audit its outcome.

    Run in a worker thread. Raises ConsoleRefused when the admin check now
    refuses; the store's own errors (AdminError, StoreError) pass through after
    an `error` outcome row.
    """
    identity = identity_of(session)
    decision = decide_admin(console, identity)
    log = AuditLog(console.engine)
    row = audit_admin(console, identity, action, decision, args, what)
    if not decision.allowed:
        raise ConsoleRefused(decision.reason)
    try:
        result = run(PolicyAdmin(console.engine, actor=f"{session.subject} (console)"))
    except BaseException:
        log.record_outcome(row, "error")
        raise
    log.record_outcome(row, "ok")
    return result


def read_session(console: Console, request: Request) -> ConsoleSession | None:
    session = ConsoleSession.from_value(console.signer.read(SESSION_PURPOSE, request.cookies.get(console.cookie)))
    return session if session is not None and session.live(time.time()) else None


def _to_sign_in(console: Console, request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"{request.scope.get('root_path', '')}/login?next={quote(target, safe='')}", 303, headers=SECURITY_HEADERS)
    console.end_session(response)
    return response


async def _admitted(console: Console, request: Request, session: ConsoleSession) -> Response | None:
    identity = identity_of(session)
    decision = await run_in_threadpool(decide_admin, console, identity)
    if decision.allowed:
        return None
    # Written once: the cookie is cleared with this answer.
    await run_in_threadpool(audit_admin, console, identity, "console", decision, None, f"{request.method} {request.url.path}")
    response = console.render(request, "refused.html", 403, reason=decision.reason, subject=session.subject)
    console.end_session(response)
    return response


def admin_page(page: Page) -> Callable[[Console, Request], Awaitable[Response]]:
    """A GET page for a signed-in admin; anyone else goes to the sign-in."""

    @functools.wraps(page)
    async def endpoint(console: Console, request: Request) -> Response:
        session = read_session(console, request)
        if session is None:
            return _to_sign_in(console, request)
        return await _admitted(console, request, session) or await page(console, request, session)

    return endpoint


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another origin (a cross-site form)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # an older browser, or a same-origin GET turned POST by no one: the CSRF token still decides
    return origin == f"{request.url.scheme}://{request.url.netloc}"


async def read_form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form; None when too big or not a form."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_FORM:
        return None
    form = await request.form(max_files=0, max_fields=64)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def admin_action(action: Action) -> Callable[[Console, Request], Awaitable[Response]]:
    """A POST for a signed-in admin, refused (403, nothing done) without the session's CSRF token."""

    @functools.wraps(action)
    async def endpoint(console: Console, request: Request) -> Response:
        session = read_session(console, request)
        if session is None:
            return console.render(request, "error.html", 403, message="Your console session has ended: sign in again.")
        form = await read_form(request)
        token = (form or {}).get("csrf", "")
        if form is None or not same_origin(request) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
            return console.render(
                request, "error.html", 403, session=session,
                message="This form was refused: it did not come from this console page (CSRF check). Reload the page and try again.",
            )
        return await _admitted(console, request, session) or await action(console, request, session, form)

    return endpoint
