"""The console's changes (POST): each one is the store operation the CLI runs, decided and audited.

Every handler parses its form the way the CLI parses its options, then runs
`audited_change` (guard.py) under the admin decision the guard took for this
request (one decision per request): an audit row naming the admin and the
change, the PolicyAdmin operation (which bumps the revision, logs
the change and so pushes `list_changed` to live sessions), and the outcome row.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mcp_acl.cli.tokens import DEFAULT_CLI_CLIENT
from mcp_acl.console import pages
from mcp_acl.console import queries as q
from mcp_acl.console.context import NOTE_PURPOSE, SECURITY_HEADERS, Console
from mcp_acl.console.cookies import ConsoleSession
from mcp_acl.console.guard import ConsoleRefused, admin_action, admission_of, audited_change
from mcp_acl.expiry import ExpiryError, parse_expiry
from mcp_acl.gateway.sessions import SessionKillError, SessionStore
from mcp_acl.policy import Effect, PolicyError, check_condition, parse_principal, parse_target_pattern
from mcp_acl.store import AdminError, PolicyAdmin, StoreError

CHANGE_ERRORS = (AdminError, StoreError, PolicyError, SessionKillError, ValueError)


def _back(console: Console, path: str, done: str) -> Response:
    # Post/redirect/get: a reload does not repeat the change. The note saying
    # what was done is signed, so a link cannot make the console claim a change.
    note = quote(console.signer.sign(NOTE_PURPOSE, {"done": done}), safe="")
    return RedirectResponse(f"/admin{path}?done={note}", 303, headers=SECURITY_HEADERS)


def _refused_page(console: Console, request: Request, session: ConsoleSession, reason: str) -> Response:
    response = console.render(request, "refused.html", 403, reason=reason, subject=session.subject)
    console.end_session(response)
    return response


def _grant_from_form(form: dict[str, str]) -> tuple[str, str, Effect, str | None, str | None, datetime | None]:
    """The form's grant, checked as `mcp-acl grant` checks its arguments; AdminError says what is wrong."""
    principal, target = form.get("principal", "").strip(), form.get("target", "").strip()
    when, note, expires = form.get("when"), form.get("note", "").strip(), form.get("expires", "").strip()
    if when is not None and when != "" and not when.strip():
        raise AdminError("the condition is only white space: leave it empty for a grant without a condition")
    when = when.strip() if when else None
    try:
        parse_principal(principal)
        parse_target_pattern(target)
        if when:
            check_condition(when)
    except PolicyError as exc:
        raise AdminError(str(exc)) from exc
    expires_at = None
    if expires:
        try:
            expires_at = parse_expiry(expires, datetime.now(timezone.utc))
        except ExpiryError as exc:
            raise AdminError(f"expires: {exc}") from exc
    effect = Effect.DENY if form.get("effect") == "deny" else Effect.ALLOW
    return principal, target, effect, when, note or None, expires_at


@admin_action
async def grant_add(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    try:
        principal, target, effect, when, note, expires_at = _grant_from_form(form)
    except AdminError as exc:
        return await pages.grants_page(console, request, session, 400, form=form, add_problem=str(exc))
    if form.get("step") == "preview":
        try:
            await run_in_threadpool(PolicyAdmin(console.engine).require_principal, principal)
            changes = await _preview(console, add=q.draft_grant(principal, target, effect, when, note, expires_at))
        except CHANGE_ERRORS as exc:
            return await pages.grants_page(console, request, session, 400, form=form, add_problem=str(exc))
        return await pages.grants_page(console, request, session, form=form, preview=changes, previewed=True)
    what = f"grant {effect.value} {principal} {target}" + (f" when {when}" if when else "")
    args = {"principal": principal, "target": target, "effect": effect.value, "when": when, "note": note,
            "expires": expires_at.isoformat() if expires_at else None}
    return await _change(
        console, request, session, "grant", what, args, lambda admin: admin.add_grant(principal, target, effect, when, note, expires_at),
        "/grants", lambda grant_id: f"added grant #{grant_id}: {what}",
        lambda problem: pages.grants_page(console, request, session, 400, form=form, add_problem=problem),
    )


def _grant_id(form: dict[str, str]) -> int:
    raw = form.get("grant", "").strip()
    if not raw.isdigit():
        raise AdminError(f"grant id {raw!r} is not a number")
    return int(raw)


@admin_action
async def grant_revoke(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    try:
        grant_id = _grant_id(form)
    except AdminError as exc:
        return await pages.grants_page(console, request, session, 400, problem=str(exc))
    problem_page = lambda problem: pages.grants_page(console, request, session, 400, problem=problem)  # noqa: E731
    if form.get("step") == "preview":
        try:
            changes = await _preview(console, remove=grant_id)
        except CHANGE_ERRORS as exc:
            return await problem_page(str(exc))
        return await pages.grants_page(console, request, session, preview=changes, revoking=grant_id)
    return await _change(
        console, request, session, "revoke", f"revoke grant #{grant_id}", {"grant": grant_id}, lambda admin: admin.revoke(grant_id),
        "/grants", lambda gone: f"revoked {gone.describe()}", problem_page,
    )


async def _change(
    console: Console, request: Request, session: ConsoleSession, action: str, what: str, args: dict, run,
    back: str, said, problem_page, errors: tuple = CHANGE_ERRORS,
) -> Response:
    """Make one audited change under the guard's decision for this request (guard.audited_change) and go
    `back` saying `said(result)`; a refused admin gets the refusal page, a change the store refuses gets
    `problem_page(..., problem=)`."""
    try:
        result = await run_in_threadpool(audited_change, console, admission_of(request), action, what, args, run)
    except ConsoleRefused as exc:
        return _refused_page(console, request, session, str(exc))
    except errors as exc:
        return await problem_page(str(exc))
    return _back(console, back, said(result))


async def _people_change(console: Console, request: Request, session: ConsoleSession, action: str, what: str, args: dict, run) -> Response:
    return await _change(
        console, request, session, action, what, args, run, "/people", lambda _: what,
        lambda problem: pages.people_page(console, request, session, 400, problem=problem),
    )


async def _preview(console: Console, **change):
    """Whose catalogues a grant added (`add=`) or revoked (`remove=`) would change; run in a worker thread."""
    settings = console.settings

    def preview():
        return q.preview_change(
            q.CatalogueViews(console.gateway.catalogue), PolicyAdmin(console.engine), console.policy(),
            client=DEFAULT_CLI_CLIENT, issuer=settings.expected_issuer, scope=settings.required_scope,
            now=datetime.now(timezone.utc), **change,
        )

    return await run_in_threadpool(preview)


def _roles(form_value: str) -> list[str]:
    return [r for r in (part.strip() for part in form_value.replace(",", " ").split()) if r]


@admin_action
async def user_add(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    name, roles = form.get("name", "").strip(), _roles(form.get("roles", ""))
    what = f"added user {name}" + (f" with roles {', '.join(roles)}" if roles else "")
    return await _people_change(console, request, session, "user add", what, {"name": name, "roles": roles},
                                lambda admin: admin.add_user(name, roles))


@admin_action
async def user_disable(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    name, disable = form.get("name", "").strip(), form.get("disabled") != "0"
    if disable and name == session.subject:
        return await pages.people_page(console, request, session, 400, problem="You cannot disable yourself here (you would lose the console at once).")
    action = "user disable" if disable else "user enable"
    return await _people_change(console, request, session, action, f"{'disabled' if disable else 'enabled'} user {name}", {"name": name},
                                lambda admin: admin.set_user_disabled(name, disable))


@admin_action
async def role_add(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    name = form.get("name", "").strip()
    return await _people_change(console, request, session, "role add", f"added role {name}", {"name": name},
                                lambda admin: admin.add_role(name))


@admin_action
async def role_assign(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    user, role = form.get("user", "").strip(), form.get("role", "").strip()
    if form.get("unassign") == "1":
        return await _people_change(console, request, session, "role unassign", f"user {user} no longer has role {role}",
                                    {"user": user, "role": role}, lambda admin: admin.unassign(user, role))
    return await _people_change(console, request, session, "role assign", f"user {user} now has role {role}",
                                {"user": user, "role": role}, lambda admin: admin.assign(user, role))


@admin_action
async def client_add(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    client_id, name, restricted = form.get("client_id", "").strip(), form.get("name", "").strip(), form.get("restricted") == "1"
    what = f"added {'restricted ' if restricted else ''}client {client_id}"
    return await _people_change(console, request, session, "client add", what,
                                {"client_id": client_id, "name": name, "restricted": restricted},
                                lambda admin: admin.add_client(client_id, restricted, name or None))


@admin_action
async def session_kill(console: Console, request: Request, session: ConsoleSession, form: dict[str, str]) -> Response:
    session_id = form.get("session", "").strip()
    store = SessionStore(console.engine)
    return await _change(
        console, request, session, "session kill", f"kill session {session_id[:12]}", {"session": session_id},
        lambda admin: store.kill(session_id), "/sessions", lambda row: f"killed session {session_id[:12]}… of {row.subject or row.client_id}",
        lambda problem: pages.sessions_page(console, request, session, 400, problem=problem),
    )
