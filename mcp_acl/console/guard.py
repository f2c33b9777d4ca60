"""Who may use the console: a signed-in principal the policy allows `admin:console`, asked on every request.

The admin check is a decision like any tool call's: the same engine, the
same policy revision the gateway decides on, and an audit row for each
sign-in and each change. Every request is admitted afresh from what the
policy and the deny-list say now, not from what the sign-in said: the
identity is rebuilt from the cookie's subject, client and issuer (roles are
resolved by the policy: stored memberships as they stand now; a disabled
user is refused), and the sign-in token's `jti` is looked up on the token
deny-list, with the sign-in it came from (revocation.py), so revoking the admin grant, taking the role away, disabling
the user or revoking the sign-in token ends console access at the next
click. If the deny-list or the policy cannot be read, the request is
refused (nothing is done).

One decision per request: the guard decides, and a change audits and runs
under that same decision (`audited_change`), as the gateway's admission
decides, audits, then runs. Every POST must carry the session's CSRF token
and, when the browser sends one, this server's Origin.
"""

from __future__ import annotations

import functools
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_acl.audit import AuditLog
from mcp_acl.console.context import CONSOLE_TARGET, SECURITY_HEADERS, SESSION_PURPOSE, Console
from mcp_acl.console.cookies import ConsoleSession
from mcp_acl.gateway.revoked import TokenRevoked
from mcp_acl.policy import Decision, Identity, decide
from mcp_acl.store import PolicyAdmin

log = logging.getLogger(__name__)

MAX_FORM = 64 * 1024
Page = Callable[[Console, Request, ConsoleSession], Awaitable[Response]]
Action = Callable[[Console, Request, ConsoleSession, dict[str, str]], Awaitable[Response]]

SIGN_IN_REVOKED = "Your console sign-in was revoked (mcp-acl token revoke, or your user was disabled): nothing was done. Sign in again."
CANNOT_CHECK = (
    "The console could not check your sign-in against the policy and the token deny-list (the database did not answer), "
    "so nothing was done. Try again in a moment."
)


class ConsoleRefused(Exception):
    """The admin check refused (the grant was revoked, the user disabled): nothing was changed."""


class SignInRevoked(Exception):
    """The session's sign-in token is on the deny-list, or its sign-in was revoked (revocation.py)."""


@dataclass(frozen=True)
class Admission:
    """The guard's one decision for this request: the admin as the policy sees them now, and its answer."""

    identity: Identity
    decision: Decision


def identity_of(session: ConsoleSession, now: float) -> Identity:
    """The admin now: the session's subject, client and issuer. The policy adds the stored roles at decision time."""
    return Identity(session.subject, session.client_id, session.roles_claimed(now), session.issuer)


def decide_admin(console: Console, identity: Identity) -> Decision:
    """May `identity` use the console now? The gateway's own decision on `admin:console`."""
    return decide(console.policy(), identity, CONSOLE_TARGET, {}, datetime.now(timezone.utc))


def admit(console: Console, session: ConsoleSession) -> Admission:
    """The deny-list and the sign-in (SignInRevoked), then the decision; run in a worker thread.

    A database error passes through: the caller refuses the request.
    """
    if session.jti is not None:
        try:
            console.revoked.check(session.jti)
        except TokenRevoked:
            raise SignInRevoked from None
    identity = identity_of(session, time.time())
    return Admission(identity, decide_admin(console, identity))


def audit_admin(console: Console, identity: Identity, action: str, decision: Decision, args: dict | None, what: str | None = None) -> int:
    """One audit row for a console sign-in or change, with the admin's identity; `what` says what was asked."""
    if what:
        decision = replace(decision, reason=f"{what}: {decision.reason}")
    return AuditLog(console.engine).record_decision(
        session_id=None, identity=identity, action=action, target=CONSOLE_TARGET, args=args, decision=decision, latency_ms=0.0,
    )


def admission_of(request: Request) -> Admission:
    """The guard's decision for this request; ConsoleRefused if the guard took none (never a change without one)."""
    admission = getattr(request.state, "console_admission", None)
    if not isinstance(admission, Admission):
        raise ConsoleRefused("no admin decision was taken for this request")
    return admission


def audited_change(console: Console, admission: Admission, action: str, what: str, args: dict[str, Any], run: Callable[[PolicyAdmin], Any]) -> Any:
    """Audit the request's admin decision for this change, make it through PolicyAdmin (as the CLI does), audit its outcome.

    Run in a worker thread. Raises ConsoleRefused when the decision refused
    (the guard answers a refusal before any action runs, so only a bug gets
    here); the store's own errors (AdminError, StoreError) pass through after
    an `error` outcome row.
    """
    identity, decision = admission.identity, admission.decision
    audit = AuditLog(console.engine)
    row = audit_admin(console, identity, action, decision, args, what)
    if not decision.allowed:
        raise ConsoleRefused(decision.reason)
    try:
        result = run(PolicyAdmin(console.engine, actor=f"{identity.subject} (console)"))
    except BaseException:
        audit.record_outcome(row, "error")
        raise
    audit.record_outcome(row, "ok")
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
    """None when the admin may go on (the decision is kept on the request for the change); else the refusal."""
    try:
        admission = await run_in_threadpool(admit, console, session)
    except SignInRevoked:
        await _audit_refusal(_audit_revoked, console, session)
        response = console.render(request, "error.html", 403, message=SIGN_IN_REVOKED, sign_in=True)
        console.end_session(response)
        return response
    except Exception as exc:  # the deny-list or the policy could not be read: refused, never let through
        log.warning("refusing a console request: the admin check failed (%s)", exc.__class__.__name__)
        return console.render(request, "error.html", 503, message=CANNOT_CHECK)
    if admission.decision.allowed:
        request.state.console_admission = admission
        return None
    # Written once: the cookie is cleared with this answer.
    await _audit_refusal(
        audit_admin, console, admission.identity, "console", admission.decision, None, f"{request.method} {request.url.path}")
    response = console.render(request, "refused.html", 403, reason=admission.decision.reason, subject=session.subject)
    console.end_session(response)
    return response


async def _audit_refusal(write: Callable[..., Any], *args: Any) -> None:
    # The refusal stands whether or not its row can be written.
    try:
        await run_in_threadpool(write, *args)
    except Exception as exc:
        log.warning("a console refusal could not be audited (%s)", exc.__class__.__name__)


def _audit_revoked(console: Console, session: ConsoleSession) -> None:
    AuditLog(console.engine).record_authentication(
        reason="invalid_token: the console's sign-in token was revoked", issuer=session.issuer or None,
        subject=session.subject, client_id=session.client_id,
    )


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
