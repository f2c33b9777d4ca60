"""The console's Approvals page in a real browser: a real SDK client's call is held, the signed-in
admin answers it by clicking, and the held call runs or is refused with the admin's reason.

alice (role analyst) may select from `orders` only with a person's approval; who that person must
be is each test's choice (the demo's `admin` by name, by role, or someone else).
"""

from __future__ import annotations

import anyio
import pytest
from sqlalchemy import select

from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.approvals import ApprovalStore, answer
from tests.console.support import browser, require_browser, screenshot_path, served_demo, sign_in
from tests.console.test_console import console_rows, outcome_of
from tests.gateway.harness import connect, text_of
from tests.support.held import held_call

pytestmark = pytest.mark.usefixtures("_browser_present")

ORDERS = {"table": "orders"}


@pytest.fixture
def _browser_present() -> None:
    require_browser()


def needs_approval_by(world, approval_by: str) -> int:
    """alice's select on orders now waits for `approval_by`. Returns the grant's id."""
    admin = PolicyAdmin(world.engine, actor="test")
    admin.add_role("lead")
    admin.add_user("carol", ["lead"])
    for plain in admin.list_grants(principal="role:analyst", target="tool:sql.select"):
        admin.revoke(plain.id)
    return admin.add_grant("role:analyst", "tool:sql.select", condition='args.table == "orders"', note="orders only",
                           approval_by=approval_by)


def hold_rows(engine) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(t.audit_events).where(t.audit_events.c.kind == "hold").order_by(t.audit_events.c.id)))


def held_select(alice, engine):
    """alice's select on orders, held until its one approval request is pending (tests/support/held.py)."""
    return held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: ApprovalStore(engine).listed())


async def test_the_admin_approves_a_held_call_in_the_browser_and_the_call_runs(database_url, tmp_path):
    async with served_demo(database_url) as served, browser() as chrome:
        world = served.world
        grant_id = needs_approval_by(world, "user:admin")
        # No poll within the test's life: only the approval's commit, heard (NOTIFY, or SQLite's files), wakes the call.
        served.app.state.gateway.invoker.holds.poll = 3600
        async with connect(served.base + "/mcp", world.token("alice", client="mcp-acl-cli")) as alice:
            async with held_select(alice, world.engine) as held:
                request = held.request
                page = await chrome.new_page()
                await sign_in(page, served.base, "admin", goto="/admin/approvals")
                row = page.locator(f"#approval-{request.id}")
                shown = " ".join((await row.inner_text()).split())
                for part in ("user:alice through client:mcp-acl-cli", "tool:sql.select", '{"table": "orders"}', "user:admin", f"#{grant_id}"):
                    assert part in shown
                await page.screenshot(path=screenshot_path(tmp_path, "approvals"), full_page=True)
                await row.locator("input[name=for]").fill("1h")
                await row.locator("form.approve button").click()
                assert f"approved {request.id} (user:alice through client:mcp-acl-cli tool:sql.select)" in await page.inner_text(".note.ok")
                assert "No calls wait for approval." in await page.inner_text("#approvals")
            result = held.result
        assert not result.is_error, text_of(result)
        assert text_of(result).startswith("id | customer_id | product_id | quantity")
        answered = ApprovalStore(world.engine).get(request.id)
        assert (answered.status, answered.decided_by) == ("approved", "admin") and answered.valid_until is not None
        # Audited as a console change (with the admin's identity) and as the approval itself, from the console.
        (change,) = console_rows(world.engine, "approval approve")
        assert (change.subject, change.client_id, change.decision) == ("admin", "mcp-acl-console", "allow")
        assert f"approve approval request {request.id} for 1h" in change.reason and outcome_of(world.engine, change.id) == "ok"
        holds = hold_rows(world.engine)
        assert [h.action for h in holds] == ["approval/request", "approval/approve"]
        assert (holds[-1].subject, holds[-1].client_id) == ("admin", "mcp-acl-console") and "approved by admin" in holds[-1].reason


async def test_a_denial_in_the_browser_reaches_the_caller_with_its_reason(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        world = served.world
        needs_approval_by(world, "role:admin")
        async with connect(served.base + "/mcp", world.token("alice", client="mcp-acl-cli")) as alice:
            async with held_select(alice, world.engine) as held:
                request = held.request
                page = await chrome.new_page()
                await sign_in(page, served.base, "admin", goto="/admin/approvals")
                row = page.locator(f"#approval-{request.id}")
                # A denial without a reason is not sent (the field is required) and nothing is answered.
                await row.locator("form.deny button").click()
                assert ApprovalStore(world.engine).get(request.id).status == "pending"
                await row.locator("input[name=reason]").fill("not this week")
                await row.locator("form.deny button").click()
                assert f"denied {request.id}" in await page.inner_text(".note.ok")
            result = held.result
        assert result.is_error
        assert text_of(result) == f"Refused: tool:sql.select was denied by admin (approval request {request.id}): not this week."
        (change,) = console_rows(world.engine, "approval deny")
        assert change.subject == "admin" and outcome_of(world.engine, change.id) == "ok"
        assert [h.action for h in hold_rows(world.engine)] == ["approval/request", "approval/deny"]


async def test_an_admin_who_is_not_among_the_named_approvers_is_refused_and_the_call_still_waits(sqlite_url):
    async with served_demo(sqlite_url) as served, browser() as chrome:
        world = served.world
        needs_approval_by(world, "role:lead")
        async with connect(served.base + "/mcp", world.token("alice", client="mcp-acl-cli")) as alice:
            async with held_select(alice, world.engine) as held:
                request = held.request
                page = await chrome.new_page()
                await sign_in(page, served.base, "admin", goto="/admin/approvals")
                row = page.locator(f"#approval-{request.id}")
                await row.locator("form.approve button").click()
                problem = await page.inner_text(".note.bad")
                assert f"approval request {request.id} must be answered by role:lead; admin is not" in problem
                # Nothing answered: still pending, listed again, and the refused change audited with outcome error.
                assert ApprovalStore(world.engine).get(request.id).status == "pending"
                assert await page.locator(f"#approval-{request.id}").count() == 1
                (change,) = console_rows(world.engine, "approval approve")
                assert change.subject == "admin" and outcome_of(world.engine, change.id) == "error"
                assert [h.action for h in hold_rows(world.engine)] == ["approval/request"]
                # A bad span is refused before anything is asked of the store.
                await page.locator(f"#approval-{request.id} input[name=for]").fill("tomorrow")
                await page.locator(f"#approval-{request.id} form.approve button").click()
                assert "for 'tomorrow': give a duration such as 30m, 1h or 1d" in await page.inner_text(".note.bad")
                assert len(console_rows(world.engine, "approval approve")) == 1
                # On a phone the page still fits: no sideways scrolling.
                await page.set_viewport_size({"width": 390, "height": 844})
                await page.goto(served.base + "/admin/approvals")
                assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
                # carol (role:lead) answers as the CLI would; that answer stands.
                await anyio.to_thread.run_sync(lambda: answer(world.engine, request.id, approve=False, approver="carol", reason="lead says no"))
            result = held.result
        assert text_of(result) == f"Refused: tool:sql.select was denied by carol (approval request {request.id}): lead says no."
