"""The admin console in a real browser (chromium) on the real app: sign-in, changes, live effects, CSRF.

Every change is made by clicking in the console and checked where it
matters: in the store, in the audit log (with the admin's identity), and in
a live MCP session of the real SDK client (`list_changed`, a killed session).
"""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from mcp_acl.console.context import CSP
from mcp_acl.gateway.sessions import SessionStore
from mcp_acl.oauth.passwords import set_password
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from tests.console.support import browser, require_browser, screenshot_path, served_demo, sign_in
from tests.gateway.harness import connect, get_stream_open, text_of, wait_for

pytestmark = pytest.mark.usefixtures("_browser_present")

PAGES = {
    "overview": "/admin/",
    "who-user": "/admin/who?user=alice",
    "who-target": "/admin/who?target=tool:files.read",
    "grants": "/admin/grants",
    "people": "/admin/people",
    "sessions": "/admin/sessions",
    "audit": "/admin/audit",
    "explain": '/admin/explain?principal=user:alice&target=tool:files.read&args={"path":"hr/salaries.csv"}',
    "upstreams": "/admin/upstreams",
    "verify": "/admin/audit/verify",
}


@pytest.fixture
def _browser_present() -> None:
    require_browser()


def console_rows(engine, action: str | None = None) -> list:
    """The decision rows the console wrote (target admin:console), oldest first (outcome rows left out)."""
    query = (select(t.audit_events).where(t.audit_events.c.target == "admin:console", t.audit_events.c.kind == "decision")
             .order_by(t.audit_events.c.id))
    if action:
        query = query.where(t.audit_events.c.action == action)
    with engine.connect() as conn:
        return list(conn.execute(query))


def outcome_of(engine, row_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(t.audit_events.c.outcome).where(t.audit_events.c.ref_id == row_id)).scalar()


async def some_traffic(url: str, world) -> None:
    """Calls allowed and refused, so the overview, the audit log and the sessions page have something to show."""
    async with connect(url, world.token("alice", client="mcp-acl-cli")) as alice, connect(url, world.token("bob", client="mcp-acl-cli")) as bob:
        for path in ("reports/q3-sales.md", "hr/salaries.csv", "notes/todo.md"):
            await alice.call_tool("files.read", {"path": path})
        await alice.call_tool("sql.select", {"table": "customers"})
        await bob.call_tool("files.list", {})
        await bob.call_tool("files.read", {"path": "reports/q3-sales.md"})


async def test_an_admin_signs_in_and_every_page_works_without_leaking_a_token_or_secret(sqlite_url, tmp_path):
    async with served_demo(sqlite_url) as served, browser() as chrome, AsyncExitStack() as stack:
        await some_traffic(served.base + "/mcp", served.world)
        # One session stays open for the sessions page.
        await stack.enter_async_context(connect(served.base + "/mcp", served.world.token("alice", client="ollama-agent")))
        page = await chrome.new_page(viewport={"width": 1280, "height": 860})
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        seen: list = []
        page.on("response", lambda r: seen.append(r) if "/admin" in r.url else None)
        await sign_in(page, served.base, "admin")
        assert await page.inner_text("h1") == "Overview"
        assert await page.inner_text(".whoami span") == "admin"
        (signed_in,) = console_rows(served.world.engine, "console sign-in")
        assert (signed_in.subject, signed_in.client_id, signed_in.decision) == ("admin", "mcp-acl-console", "allow")

        cookies = {c["name"]: c for c in await page.context.cookies()}
        session = cookies["mcp_acl_console"]
        assert session["httpOnly"] and session["sameSite"] == "Lax" and session["expires"] > 0
        # Script cannot read the session cookie (HttpOnly).
        assert await page.evaluate("document.cookie") == "" or "mcp_acl_console" not in await page.evaluate("document.cookie")

        with served.world.engine.connect() as conn:
            hashes = [h for h in conn.execute(select(t.users.c.password_hash)).scalars() if h]
        secrets = [*hashes, "admin-demo-password", "alice-demo-password", session["value"]]
        for name, path in PAGES.items():
            answer = await page.goto(served.base + path)
            assert answer.status == 200, name
            assert answer.headers["content-security-policy"] == CSP
            assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"
            html = await page.content()
            assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", html), f"{name} shows a token"
            assert not any(s in html for s in secrets), f"{name} shows a secret"
            await page.screenshot(path=screenshot_path(tmp_path, name), full_page=True)
        assert not blocked, blocked  # no inline script or style anywhere
        assert not any(r.url.split("/")[2] != served.base.split("/")[2] for r in seen)  # nothing from another origin

        # The explain page answers as `mcp-acl check` does.
        await page.goto(served.base + PAGES["explain"])
        assert await page.inner_text("#decision h2") == "Denied"
        assert 'args.path.startsWith("reports/") does not hold' in await page.inner_text("#decision")
        # Who can do what: alice's catalogue with the deciding grants, and files.read's users.
        await page.goto(served.base + "/admin/who?user=alice")
        catalogue = await page.inner_text("#catalogue")
        assert "tool:files.read" in catalogue and "Analysts may read files only inside reports/" in catalogue
        assert "tool:files.write" not in catalogue
        await page.goto(served.base + "/admin/who?target=tool:files.read")
        holders = await page.inner_text("#holders")
        assert "user:alice" in holders and "user:bob" in holders and "user:admin" not in holders

        # On a phone the pages still fit: no sideways scrolling.
        await page.set_viewport_size({"width": 390, "height": 844})
        for name in ("grants", "audit"):
            await page.goto(served.base + PAGES[name])
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
        await page.screenshot(path=screenshot_path(tmp_path, "phone-grants"), full_page=False)


async def test_a_user_without_the_admin_grant_is_refused_and_the_refusal_audited(sqlite_url, tmp_path):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        page = await chrome.new_page()
        await sign_in(page, served.base, "alice", goto="/admin/grants")
        assert await page.inner_text("h1") == "Not an administrator"
        await page.screenshot(path=screenshot_path(tmp_path, "refused"))
        (row,) = console_rows(served.world.engine, "console sign-in")
        assert (row.subject, row.decision) == ("alice", "deny")
        assert "no grant allows user alice to use admin:console" in row.reason
        # No session was made: every page sends alice back to the sign-in.
        answer = await page.goto(served.base + "/admin/grants")
        assert "/authorize" in page.url and answer.status == 200
        assert await page.context.cookies() and all(c["name"] != "mcp_acl_console" for c in await page.context.cookies())


async def test_revoking_the_admin_grant_ends_console_access_at_the_next_click(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin")
        admin = PolicyAdmin(served.world.engine)
        (grant,) = admin.list_grants(principal="role:admin")
        admin.revoke(grant.id)
        answer = await page.goto(served.base + "/admin/grants")
        assert answer.status == 403 and await page.inner_text("h1") == "Not an administrator"
        assert console_rows(served.world.engine)[-1].decision == "deny"
        await page.goto(served.base + "/admin/grants")
        assert "/authorize" in page.url  # the session cookie was cleared


async def test_a_grant_added_in_the_console_reaches_a_live_sdk_session_and_revoking_takes_it_away(database_url):
    heard: list[str] = []

    async def record(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.append(message.method)

    async with served_demo(database_url) as served, browser() as chrome:
        world = served.world
        async with connect(served.base + "/mcp", world.token("bob", client="mcp-acl-cli"), message_handler=record) as bob:
            before = {tool.name for tool in (await bob.list_tools()).tools}
            assert "sql.tables" not in before
            (live,) = SessionStore(world.engine).live()
            await get_stream_open(served, live.id)

            page = await chrome.new_page()
            await sign_in(page, served.base, "admin", goto="/admin/grants")
            await page.click("#add summary")
            await page.fill("input[name=principal]", "role:intern")
            await page.fill("input[name=target]", "tool:sql.tables")
            await page.fill("input[name=note]", "Interns may list the shop's tables.")
            # A preview first: bob's catalogue would gain sql.tables; nothing is stored yet.
            await page.click("button[value=preview]")
            assert "bob gains tool:sql.tables" in " ".join((await page.inner_text("#preview")).split())
            assert not heard and not PolicyAdmin(world.engine).list_grants(principal="role:intern", target="tool:sql.tables")
            await page.click("button[value=commit]")
            assert "Done: added grant #" in await page.inner_text(".note.ok")

            await wait_for(lambda: heard)
            after = {tool.name for tool in (await bob.list_tools()).tools}
            assert after == before | {"sql.tables"}
            assert not (await bob.call_tool("sql.tables", {})).is_error
            (added,) = PolicyAdmin(world.engine).list_grants(principal="role:intern", target="tool:sql.tables")
            assert added.created_by == "admin (console)"
            (row,) = console_rows(world.engine, "grant")
            assert (row.subject, row.client_id, row.decision) == ("admin", "mcp-acl-console", "allow")
            assert "grant allow role:intern tool:sql.tables" in row.reason and outcome_of(world.engine, row.id) == "ok"

            # Revoke it from the list; the very next call is refused and the list changes again.
            page.on("dialog", lambda dialog: dialog.accept())
            await page.click(f"#grant-{added.id} button[value=commit]")
            assert f"revoked #{added.id}" in await page.inner_text(".note.ok")
            await wait_for(lambda: len(heard) >= 2)
            assert "sql.tables" not in {tool.name for tool in (await bob.list_tools()).tools}
            refused = await bob.call_tool("sql.tables", {})
            assert refused.is_error
            (revoked,) = console_rows(world.engine, "revoke")
            assert revoked.subject == "admin" and outcome_of(world.engine, revoked.id) == "ok"


async def test_the_condition_is_checked_as_you_type_and_a_bad_one_is_refused_on_submit(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin", goto="/admin/grants")
        await page.click("#add summary")
        await page.fill("input[name=principal]", "role:intern")
        await page.fill("input[name=target]", "tool:files.read")
        await page.fill("#when", "args.path.startsWith(")
        # Waited for through the DOM: the strict CSP forbids the page to evaluate strings (Playwright's wait_for_function).
        await expect(page.locator("#when-check")).to_have_text(re.compile("^✗"))
        await page.fill("#when", 'args.path.startsWith("tmp/")')
        await expect(page.locator("#when-check")).to_have_text(re.compile("^✓"))
        await page.fill("#when", "args.path + 1")
        await page.click("button[value=commit]")
        problem = await page.inner_text("#add-problem")
        assert "condition" in problem.lower() or "args.path" in problem
        # The same check as `mcp-acl grant --when`: nothing stored, nothing audited as a change.
        assert not PolicyAdmin(served.world.engine).list_grants(principal="role:intern", target="tool:files.read")[1:]
        assert console_rows(served.world.engine, "grant") == []


async def test_a_session_killed_in_the_console_is_refused_at_its_next_request(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        world = served.world
        async with connect(served.base + "/mcp", world.token("alice", client="mcp-acl-cli")) as alice:
            assert not (await alice.call_tool("files.list", {"path": "reports"})).is_error
            (live,) = SessionStore(world.engine).live()
            page = await chrome.new_page()
            await sign_in(page, served.base, "admin", goto="/admin/sessions")
            assert "alice" in await page.inner_text(f"#session-{live.id[:12]}")
            page.on("dialog", lambda dialog: dialog.accept())
            await page.click(f"#session-{live.id[:12]} button")
            assert "killed session" in await page.inner_text(".note.ok")
            assert SessionStore(world.engine).get(live.id).end_reason == "killed"
            with pytest.raises(Exception, match="ended by an administrator|session"):
                with anyio.fail_after(20):
                    await alice.call_tool("files.list", {"path": "reports"})
        (row,) = console_rows(world.engine, "session kill")
        assert row.subject == "admin" and outcome_of(world.engine, row.id) == "ok"


async def test_the_audit_log_filters_by_caller_result_target_and_time_and_exports_what_it_shows(database_url):
    async with served_demo(database_url) as served, browser() as chrome:
        world = served.world
        async with connect(served.base + "/mcp", world.token("alice", client="mcp-acl-cli")) as alice:
            assert (await alice.call_tool("files.read", {"path": "hr/salaries.csv"})).is_error
            assert "Q3" in text_of(await alice.call_tool("files.read", {"path": "reports/q3-sales.md"}))
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin", goto="/admin/audit")
        await page.fill("input[name=caller]", "alice")
        await page.select_option("select[name=result]", "deny")
        await page.click(".filters button")
        rows = await page.locator("#audit tbody tr").all_inner_texts()
        assert len(rows) == 1 and "tool:files.read" in rows[0] and "deny" in rows[0]
        await page.locator("#audit details summary").first.click()
        assert "does not hold" in await page.inner_text("#audit details dl")
        # The export gives the same rows as JSON lines.
        async with page.expect_download() as download:
            await page.click("a[download]")
        saved = Path(await (await download.value).path())
        exported = [json.loads(line) for line in saved.read_text(encoding="utf-8").splitlines()]
        assert [(r["subject"], r["decision"], r["target"]) for r in exported] == [("alice", "deny", "tool:files.read")]
        # Allowed ones, by target; and a time window before anything happened shows none.
        await page.goto(served.base + "/admin/audit?caller=alice&result=allow&target=files.read")
        assert len(await page.locator("#audit tbody tr").all_inner_texts()) == 1
        await page.goto(served.base + "/admin/audit?caller=alice&until=2020-01-01T00:00")
        assert "No rows match." in await page.inner_text("#audit")


async def test_a_change_without_the_sessions_csrf_token_or_from_another_origin_is_refused(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        world = served.world
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin", goto="/admin/grants")
        token = await page.get_attribute("input[name=csrf]", "value")
        form = {"principal": "role:intern", "target": "tool:sql.tables", "step": "commit"}
        url = served.base + "/admin/grants/add"
        # The browser's own cookies go with these requests (the page's context).
        missing = await page.request.post(url, form=form)
        wrong = await page.request.post(url, form={**form, "csrf": "x" + token[1:]})
        elsewhere = await page.request.post(url, form={**form, "csrf": token}, headers={"Origin": "http://evil.example"})
        assert [missing.status, wrong.status, elsewhere.status] == [403, 403, 403]
        assert "CSRF" in await missing.text()
        assert not PolicyAdmin(world.engine).list_grants(principal="role:intern", target="tool:sql.tables")
        # With the token, from this origin, the same form is done.
        done = await page.request.post(url, form={**form, "csrf": token}, headers={"Origin": served.base})
        assert done.ok and PolicyAdmin(world.engine).list_grants(principal="role:intern", target="tool:sql.tables")


async def test_users_roles_and_clients_are_added_disabled_and_assigned_as_the_cli_does(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        world = served.world
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin", goto="/admin/people")
        await page.fill("#user-add input[name=name]", "carol")
        await page.fill("#user-add input[name=roles]", "intern")
        await page.click("#user-add button")
        assert "added user carol with roles intern" in await page.inner_text(".note.ok")
        await page.fill("form[action='/admin/roles/add'] input[name=name]", "auditor")
        await page.click("form[action='/admin/roles/add'] button")
        await page.select_option("#role-assign select[name=user]", "carol")
        await page.select_option("#role-assign select[name=role]", "auditor")
        await page.click("#role-assign button")
        await page.fill("form[action='/admin/clients/add'] input[name=client_id]", "report-agent")
        await page.check("form[action='/admin/clients/add'] input[name=restricted]")
        await page.click("form[action='/admin/clients/add'] button")
        await page.click("#user-carol form[action='/admin/users/disable'] button")
        users = {u.name: u for u in PolicyAdmin(world.engine).list_users()}
        assert users["carol"].roles == ("auditor", "intern") and users["carol"].disabled
        assert ("report-agent", None, True) in PolicyAdmin(world.engine).list_clients()
        # A name the CLI refuses is refused here with the CLI's words, and nothing is added.
        await page.fill("#user-add input[name=name]", "bad name")
        await page.click("#user-add button")
        assert "white space" in await page.inner_text(".note.bad")
        actions = [r.action for r in console_rows(world.engine) if r.action != "console sign-in"]
        assert actions == ["user add", "role add", "role assign", "client add", "user disable", "user add"]
        set_password(world.engine, "carol", "carol-long-password")
