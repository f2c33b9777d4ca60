"""The admin web console, served at /admin by `mcp-acl serve` (docs/console.md).

A Starlette app mounted by `create_app`: server-rendered pages (Jinja2), its
own CSS and one small script, no build step and nothing from another origin.
Sign-in is OAuth against the embedded issuer, access is the policy's answer
for `admin:console`, and every change is the CLI's store operation, audited
with the admin's identity.
"""

from __future__ import annotations

import mimetypes
from functools import partial

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mcp_acl.config import Settings
from mcp_acl.console import actions, approvals, pages
from mcp_acl.console.context import HERE, SECURITY_HEADERS, Console
from mcp_acl.console.guard import admin_action
from mcp_acl.console.signin import SignIn

STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC:  # only the files named here: no path ever reaches the file system
        return Response("not found", 404, headers=SECURITY_HEADERS)
    body = (HERE / "static" / name).read_bytes()
    headers = dict(SECURITY_HEADERS, **{"Cache-Control": "public, max-age=300"})
    return Response(body, media_type=STATIC[name] or mimetypes.guess_type(name)[0], headers=headers)


def console_app(settings: Settings, engine: Engine, gateway, keys) -> Starlette:
    """The console for one gateway: mount it at /admin."""
    console = Console(settings, engine, gateway, keys)
    sign_in = SignIn(console)

    def get(path: str, page) -> Route:
        return Route(path, partial(page, console), methods=["GET"])

    def post(path: str, action) -> Route:
        return Route(path, partial(action, console), methods=["POST"])

    routes = [
        Route("/login", sign_in.login, methods=["GET"]),
        Route("/callback", sign_in.callback, methods=["GET"]),
        post("/logout", admin_action(sign_in.logout)),
        Route("/static/{name}", _static, methods=["GET"]),
        get("/", pages.overview),
        get("/who", pages.who),
        get("/grants", pages.grants),
        get("/grants/condition", pages.condition_check),
        post("/grants/add", actions.grant_add),
        post("/grants/revoke", actions.grant_revoke),
        get("/people", pages.people),
        post("/users/add", actions.user_add),
        post("/users/disable", actions.user_disable),
        post("/roles/add", actions.role_add),
        post("/roles/assign", actions.role_assign),
        post("/clients/add", actions.client_add),
        get("/sessions", pages.sessions),
        post("/sessions/kill", actions.session_kill),
        get("/audit", pages.audit),
        get("/audit/export", pages.audit_export),
        get("/audit/verify", pages.audit_verify),
        get("/explain", pages.explain),
        get("/upstreams", pages.upstreams),
        get("/approvals", approvals.approvals),
        post("/approvals/answer", approvals.approval_answer),
    ]
    app = Starlette(routes=routes)
    app.state.console = console
    return app


def admin_redirect():
    """`/admin` without the slash goes to the overview."""
    async def to_overview(request: Request) -> Response:
        return RedirectResponse("/admin/", 308, headers=SECURITY_HEADERS)

    return to_overview
