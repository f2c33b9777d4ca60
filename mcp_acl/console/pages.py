"""The console's pages (GET): overview, who can do what, grants, people, sessions, audit, explain, upstreams."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mcp_acl.audit import AuditLog, checks
from mcp_acl.cli.tokens import DEFAULT_CLI_CLIENT
from mcp_acl.console import queries as q
from mcp_acl.console.context import SECURITY_HEADERS, Console
from mcp_acl.console.cookies import ConsoleSession
from mcp_acl.console.guard import admin_page
from mcp_acl.gateway.sessions import SessionStore
from mcp_acl.policy import PolicyError, condition_problem, parse_target, parse_target_pattern
from mcp_acl.store import AdminError, PolicyAdmin, StoreError
from mcp_acl.store.questions import Question, ask, resolve


def _now() -> datetime:
    return datetime.now(timezone.utc)


@admin_page
async def overview(console: Console, request: Request, session: ConsoleSession) -> Response:
    def gather() -> dict:
        now = _now()
        engine = console.engine
        hours = q.decisions_per_hour(engine, now)
        day_ago = now - timedelta(hours=24)
        return {
            "chart": q.chart(hours),
            "allowed": sum(h.allowed for h in hours), "refused": sum(h.refused for h in hours),
            "top_targets": q.top_refused(engine, q.ev.c.target, day_ago),
            "top_callers": q.top_refused(engine, q.ev.c.subject, day_ago),
            "sessions": len(SessionStore(engine).live()),
            # Not the whole chain (O(rows) per view): the rows since the last check (audit/checks.py).
            "chain": checks.look(engine, now),
            "revision": PolicyAdmin(engine).revision(),
        }

    return console.render(request, "overview.html", session=session, **await run_in_threadpool(gather))


@admin_page
async def who(console: Console, request: Request, session: ConsoleSession) -> Response:
    params = request.query_params
    user, client, target = params.get("user", "").strip(), params.get("client", "").strip(), params.get("target", "").strip()
    settings = console.settings

    def gather() -> dict:
        admin = PolicyAdmin(console.engine)
        values: dict = {"users": admin.list_users(), "clients": admin.list_clients(), "user": user, "client": client, "target": target}
        try:
            policy, now = console.policy(), _now()
            if user:
                admin.require_principal(f"user:{user}")
                through = client or DEFAULT_CLI_CLIENT
                if client:
                    admin.require_principal(f"client:{client}")
                identity = q.catalogue_identity(user, through, settings.expected_issuer, settings.required_scope)
                listing = q.CatalogueViews(console.gateway.catalogue).build(policy, identity, now)
                values.update(through=through, listed=q.explained_listing(policy, listing, identity, now), revision=policy.revision)
            if target:
                parse_target(target)
                through = client or DEFAULT_CLI_CLIENT
                values.update(through=through, holders=q.who_can_use(
                    admin, policy, target, through, settings.expected_issuer, settings.required_scope, now), revision=policy.revision)
        except (AdminError, PolicyError, StoreError) as exc:
            values["problem"] = str(exc)
        return values

    return console.render(request, "who.html", session=session, **await run_in_threadpool(gather))


@admin_page
async def grants(console: Console, request: Request, session: ConsoleSession) -> Response:
    return await grants_page(console, request, session)


async def grants_page(console: Console, request: Request, session: ConsoleSession, status: int = 200, **extra) -> Response:
    """The grants page; actions render it again with their outcome (`extra`)."""
    params = request.query_params
    principal, target = params.get("principal", "").strip(), params.get("target", "").strip()

    def gather() -> dict:
        admin = PolicyAdmin(console.engine)
        values: dict = {"principal": principal, "target": target, "now": _now()}
        try:
            if principal:
                admin.require_principal(principal)
            if target:
                parse_target_pattern(target)
            values["grants"] = admin.list_grants(principal or None, target or None)
        except (AdminError, PolicyError) as exc:
            values["grants"], values["problem"] = [], str(exc)
        values["problems"] = {g.id: condition_problem(g.condition) for g in values["grants"] if g.condition}
        values["users"], values["roles"], values["clients"] = admin.list_users(), admin.list_roles(), admin.list_clients()
        values["revision"] = admin.revision()
        return values

    values = await run_in_threadpool(gather)
    values.update(extra)
    return console.render(request, "grants.html", status, session=session, **values)


@admin_page
async def condition_check(console: Console, request: Request, session: ConsoleSession) -> Response:
    """The condition typed so far, checked as `grant --when` checks it (for the add form's script)."""
    text = request.query_params.get("when", "")
    problem = condition_problem(text) if text.strip() else None
    return JSONResponse({"problem": problem}, headers=SECURITY_HEADERS)


@admin_page
async def people(console: Console, request: Request, session: ConsoleSession) -> Response:
    return await people_page(console, request, session)


async def people_page(console: Console, request: Request, session: ConsoleSession, status: int = 200, **extra) -> Response:
    def gather() -> dict:
        admin = PolicyAdmin(console.engine)
        return {"users": admin.list_users(), "roles": admin.list_roles(), "clients": admin.list_clients()}

    values = await run_in_threadpool(gather)
    values.update(extra)
    return console.render(request, "people.html", status, session=session, **values)


@admin_page
async def sessions(console: Console, request: Request, session: ConsoleSession) -> Response:
    return await sessions_page(console, request, session)


async def sessions_page(console: Console, request: Request, session: ConsoleSession, status: int = 200, **extra) -> Response:
    rows = await run_in_threadpool(SessionStore(console.engine).live)
    return console.render(request, "sessions.html", status, session=session, rows=rows, **extra)


def _audit_filter(request: Request) -> tuple[q.AuditFilter, str | None]:
    params = request.query_params
    problem = None
    times = {}
    for name in ("since", "until"):
        raw = params.get(name, "").strip()
        times[name] = None
        if raw:
            try:
                value = datetime.fromisoformat(raw)
                times[name] = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            except ValueError:
                problem = f"{name}: {raw!r} is not a time such as 2026-12-06T14:00 (UTC)"
    result = params.get("result", "")
    return q.AuditFilter(
        params.get("caller", "").strip(), params.get("target", "").strip(), result if result in q.RESULTS else "",
        times["since"], times["until"],
    ), problem


@admin_page
async def audit(console: Console, request: Request, session: ConsoleSession) -> Response:
    wanted, problem = _audit_filter(request)
    rows = await run_in_threadpool(q.audit_rows, console.engine, wanted)
    return console.render(
        request, "audit.html", session=session, rows=rows, wanted=wanted, problem=problem, results=q.RESULTS,
        query=request.url.query,
    )


@admin_page
async def audit_export(console: Console, request: Request, session: ConsoleSession) -> Response:
    """The filtered rows as JSON lines (as `audit export` writes them), oldest first.

    Streamed in batches (Starlette runs the generator in a worker thread),
    so a log of any size takes one batch of memory; a failure part way
    ends the response as a failure (queries.export_lines).
    """
    wanted, _ = _audit_filter(request)
    headers = dict(SECURITY_HEADERS, **{"Content-Disposition": 'attachment; filename="mcp-acl-audit.jsonl"'})
    return StreamingResponse(q.export_lines(console.engine, wanted), media_type="application/x-ndjson", headers=headers)


@admin_page
async def audit_verify(console: Console, request: Request, session: ConsoleSession) -> Response:
    """The full walk of `audit verify`, kept as the last full verification the overview checks on from."""
    def verify() -> tuple:
        result = AuditLog(console.engine).verify()
        at = _now()
        try:
            checks.record_full(console.engine, result, f"{session.subject} (console)", at)
            recorded = None
        except SQLAlchemyError as exc:  # the verdict stands; only the overview will not know of it
            recorded = f"{exc.__class__.__name__}"
        return result, at, recorded

    result, at, not_recorded = await run_in_threadpool(verify)
    return console.render(request, "verify.html", session=session, result=result, at=at, not_recorded=not_recorded)


@admin_page
async def explain(console: Console, request: Request, session: ConsoleSession) -> Response:
    params = request.query_params
    fields = {name: params.get(name, "").strip() for name in ("principal", "target", "client", "args")}
    values: dict = {"fields": fields}
    if fields["principal"] and fields["target"]:
        def decide_it() -> dict:
            try:
                args = json.loads(fields["args"]) if fields["args"] else None
            except json.JSONDecodeError as exc:
                return {"problem": f"the arguments are not valid JSON: {exc}"}
            if args is not None and not isinstance(args, dict):
                return {"problem": "the arguments must be a JSON object such as {\"path\": \"reports/q3.md\"}"}
            question = Question(fields["principal"], fields["target"], args, fields["client"] or None)
            try:
                admin = PolicyAdmin(console.engine)
                asker = resolve(admin, question)
                policy = console.policy()
                decision = ask(policy, asker, question, _now())
            except (AdminError, StoreError) as exc:
                return {"problem": str(exc)}
            considered = [g for g in admin.list_grants() if g.id in set(decision.considered)]
            return {"decision": decision, "as_role": asker.as_role, "considered": considered}

        values.update(await run_in_threadpool(decide_it))
    return console.render(request, "explain.html", session=session, **values)


@admin_page
async def upstreams(console: Console, request: Request, session: ConsoleSession) -> Response:
    def gather() -> list:
        from mcp_acl.store.upstreams import list_upstreams

        with console.engine.connect() as conn:
            return list_upstreams(conn)

    try:
        rows = await run_in_threadpool(gather)
        problem = None
    except Exception as exc:  # an upstream table this page cannot read: say so, never a 500
        rows, problem = [], f"{exc.__class__.__name__}: {exc}"
    return console.render(request, "upstreams.html", session=session, rows=rows, problem=problem)
