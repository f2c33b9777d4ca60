"""The console session after sign-in: every click is admitted from the policy and the deny-list as they stand now.

An admin signs in through the real OAuth flow in chromium; then the
sign-in token is revoked (`mcp-acl token revoke`), the role taken away
(`mcp-acl role unassign`) or the user disabled (PolicyAdmin), and the next
POST (the grant form on the page already open) and the next page load are
refused, and the POST changes nothing. The session cookie from before the
refusal is put back for the page load (as a second tab, or a copied cookie,
would send it): the server refuses it on its own, not because the browser
dropped it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import anyio
import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select, text
from typer.testing import CliRunner

from mcp_acl.app import create_app
from mcp_acl.cli import app as cli_app
from mcp_acl.config import Settings
from mcp_acl.console import guard
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from tests.auth.support import LoopbackServer
from tests.console.support import browser, require_browser, served_demo, sign_in
from tests.console.test_console_external import Provider
from tests.support.demo_gateway import make_demo

pytestmark = pytest.mark.usefixtures("_browser_present")


@pytest.fixture
def _browser_present() -> None:
    require_browser()


def mcp_acl(url: str, *args: str) -> str:
    """Run the admin CLI on the served database; its one line of output."""
    done = CliRunner().invoke(cli_app, [*args, "--database", url], prog_name="mcp-acl")
    assert done.exit_code == 0, done.output
    return done.output


def sign_in_jti(engine) -> str:
    """The jti of the console's sign-in token, from the token ledger."""
    with engine.connect() as conn:
        (jti,) = conn.execute(select(t.access_tokens.c.jti).where(t.access_tokens.c.client_id == "mcp-acl-console")).scalars()
    return jti


def intern_grants(engine) -> list:
    return PolicyAdmin(engine).list_grants(principal="role:intern", target="tool:sql.tables")


async def post_the_grant_form(page) -> int:
    """Fill and submit the add-grant form of the grants page already open; the answer's status."""
    await page.click("#add summary")
    await page.fill("input[name=principal]", "role:intern")
    await page.fill("input[name=target]", "tool:sql.tables")
    async with page.expect_navigation() as answer:
        await page.click("button[value=commit]")
    return (await answer.value).status


@asynccontextmanager
async def admin_on_the_grants_page(database_url: str):
    """The demo served, chromium signed in as admin through the real OAuth flow, on the grants page: (served, page)."""
    async with served_demo(database_url) as served, browser() as chrome:
        page = await chrome.new_page()
        await sign_in(page, served.base, "admin", goto="/admin/grants")
        assert (await page.inner_text("h1")).startswith("Grants")
        yield served, page


async def the_next_post_and_page_are_refused(page, base: str, engine, heading: str, reason: str) -> None:
    """The grant form posted from the open page, then the grants page loaded, are each refused with `heading` and `reason`."""
    kept = await page.context.cookies()
    assert await post_the_grant_form(page) == 403
    assert await page.inner_text("h1") == heading and reason in await page.inner_text(".note.bad")
    assert intern_grants(engine) == []  # the POST changed nothing
    await page.context.add_cookies(kept)  # the cookie from before the refusal, sent again
    answer = await page.goto(base + "/admin/grants")
    assert answer.status == 403 and await page.inner_text("h1") == heading
    assert reason in await page.inner_text(".note.bad")
    assert intern_grants(engine) == []


@pytest.mark.parametrize("how", ["jti", "user"])
async def test_revoking_the_sign_in_token_ends_the_console_session_at_the_next_click(sqlite_url, how):
    async with admin_on_the_grants_page(sqlite_url) as (served, page):
        engine = served.world.engine
        jti = sign_in_jti(engine)
        said = await anyio.to_thread.run_sync(
            mcp_acl, served.world.settings.database_url, "token", "revoke", *([jti] if how == "jti" else ["--user", "admin"]))
        assert "revoked" in said
        await the_next_post_and_page_are_refused(page, served.base, engine, "Not done", "sign-in was revoked")
        # Each refusal is audited as a refused authentication of the admin through the console.
        with engine.connect() as conn:
            rows = conn.execute(select(t.audit_events).where(t.audit_events.c.kind == "authentication")).all()
        assert [(r.subject, r.client_id) for r in rows] == [("admin", "mcp-acl-console")] * 2
        assert all("console's sign-in token was revoked" in r.reason for r in rows)
        # The session is over: the console asks for a sign-in again.
        await page.goto(served.base + "/admin/grants")
        assert "/authorize" in page.url


@pytest.mark.parametrize("party", ["--user", "--client"])
async def test_revoking_the_admins_sign_ins_ends_a_session_that_outlived_its_token(database_url, party):
    """A console session lasts 8 hours, its token one: `token revoke --user admin` (or `--client mcp-acl-console`)
    after the token expired puts no token on the deny-list, but revokes the sign-in, and that ends the session."""
    async with admin_on_the_grants_page(database_url) as (served, page):
        engine = served.world.engine
        jti = sign_in_jti(engine)
        # The sign-in token's hour is over (its ledger row says so, as it would an hour later).
        with engine.begin() as conn:
            conn.execute(t.access_tokens.update().where(t.access_tokens.c.jti == jti)
                         .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
        await page.goto(served.base + "/admin/grants")
        assert (await page.inner_text("h1")).startswith("Grants")  # the session goes on without its token
        said = await anyio.to_thread.run_sync(
            mcp_acl, served.world.settings.database_url, "token", "revoke", party, "admin" if party == "--user" else "mcp-acl-console")
        assert "revoked 0 live access tokens" in said
        await the_next_post_and_page_are_refused(page, served.base, engine, "Not done", "sign-in was revoked")


@pytest.mark.parametrize("how", ["role", "disabled"])
async def test_taking_the_admin_role_away_or_disabling_the_admin_ends_the_session_at_the_next_click(sqlite_url, how):
    async with admin_on_the_grants_page(sqlite_url) as (served, page):
        engine = served.world.engine
        if how == "role":
            await anyio.to_thread.run_sync(mcp_acl, served.world.settings.database_url, "role", "unassign", "admin", "admin")
            reason = "no grant allows user admin to use admin:console"
        else:
            PolicyAdmin(engine, actor="test").set_user_disabled("admin", True)
            reason = "sign-in was revoked"  # disabling revokes the user's tokens too; the deny-list answers first
        heading = "Not an administrator" if how == "role" else "Not done"
        await the_next_post_and_page_are_refused(page, served.base, engine, heading, reason)


async def test_when_the_deny_list_cannot_be_read_every_click_is_refused_and_nothing_changes(sqlite_url):
    async with admin_on_the_grants_page(sqlite_url) as (served, page):
        engine = served.world.engine
        # The deny-list's table is gone from under the server: the lookup fails, it must not pass.
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_tokens RENAME TO access_tokens_away"))
        assert await post_the_grant_form(page) == 503
        assert "could not check your sign-in" in await page.inner_text(".note.bad")
        assert intern_grants(engine) == []
        answer = await page.goto(served.base + "/admin/people")
        assert answer.status == 503 and "could not check your sign-in" in await page.inner_text(".note.bad")
        # Nothing else was wrong: with the table back, the same session goes on.
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE access_tokens_away RENAME TO access_tokens"))
        answer = await page.goto(served.base + "/admin/people")
        assert answer.status == 200 and await page.inner_text("h1") == "Users, roles, clients"


async def test_a_console_change_is_decided_once_and_audited_under_that_decision(sqlite_url, monkeypatch):
    decisions: list = []
    real = guard.decide_admin

    def counted(console, identity):
        decision = real(console, identity)
        decisions.append((identity.subject, decision.allowed))
        return decision

    monkeypatch.setattr(guard, "decide_admin", counted)
    async with admin_on_the_grants_page(sqlite_url) as (served, page):
        engine = served.world.engine
        token = await page.get_attribute("input[name=csrf]", "value")
        decisions.clear()
        form = {"principal": "role:intern", "target": "tool:sql.tables", "step": "commit", "csrf": token}
        done = await page.request.post(served.base + "/admin/grants/add", form=form, headers={"Origin": served.base}, max_redirects=0)
        assert done.status == 303 and len(intern_grants(engine)) == 1
        assert decisions == [("admin", True)]  # one decision for the POST, not one in the guard and one in the change
        with engine.connect() as conn:
            (row,) = conn.execute(select(t.audit_events).where(
                t.audit_events.c.action == "grant", t.audit_events.c.kind == "decision", t.audit_events.c.target == "admin:console")).all()
        assert (row.subject, row.decision) == ("admin", "allow") and row.reason.startswith("grant allow role:intern tool:sql.tables: ")


@asynccontextmanager
async def provider_console(sqlite_url: str) -> AsyncIterator[tuple[Provider, str, object]]:
    """The demo behind an external provider whose tokens name alice and carry a `roles` claim (MCP_ACL_ROLES_CLAIM)."""
    provider = Provider(RSAKey.generate_key(2048, private=True))
    provider.user = "alice"
    idp = LoopbackServer(provider.app())
    provider.url = await anyio.to_thread.run_sync(idp.__enter__)
    world = make_demo(sqlite_url)
    settings = Settings(database_url=sqlite_url, issuer=provider.issuer, roles_claim="roles")
    provider.resource = settings.resource_url
    server = LoopbackServer(create_app(settings, world.engine), lifespan="on")
    base = await anyio.to_thread.run_sync(server.__enter__)
    try:
        yield provider, base, world
    finally:
        await anyio.to_thread.run_sync(server.__exit__, None, None, None)
        await anyio.to_thread.run_sync(idp.__exit__, None, None, None)
        world.engine.dispose()


async def test_revoking_a_providers_sign_in_token_by_its_jti_ends_the_console_session(sqlite_url, monkeypatch):
    """alice is an admin only by her provider's role claim; the token is hers for an hour, its jti is revoked now."""
    monkeypatch.setenv("MCP_ACL_CONSOLE_CLIENT_ID", "console-app")
    async with provider_console(sqlite_url) as (provider, base, world), browser() as chrome:
        provider.extra = {"roles": ["admin"], "jti": "alice-hour"}
        page = await chrome.new_page()
        page.set_default_timeout(15_000)
        await page.goto(base + "/admin/grants")
        assert (await page.inner_text("h1")).startswith("Grants")  # the claimed role counts while the token is valid
        await anyio.to_thread.run_sync(mcp_acl, sqlite_url, "token", "revoke", "alice-hour")
        await the_next_post_and_page_are_refused(page, base, world.engine, "Not done", "sign-in was revoked")


async def test_a_providers_claimed_admin_role_counts_only_until_its_token_expires(sqlite_url, monkeypatch):
    """The console trusts a role claim as /mcp trusts the token: until its `exp`, never for the session's 8 hours.

    The token is past its exp but inside the verifier's clock leeway: the
    sign-in is decided on its claims, and from the first click on its role
    claim no longer counts (alice holds no stored admin role).
    """
    monkeypatch.setenv("MCP_ACL_CONSOLE_CLIENT_ID", "console-app")
    async with provider_console(sqlite_url) as (provider, base, world), browser() as chrome:
        provider.extra = {"roles": ["admin"], "jti": "alice-ended", "exp": int(time.time()) - 1}
        page = await chrome.new_page()
        page.set_default_timeout(15_000)
        callbacks: list = []
        page.on("response", lambda r: callbacks.append(r) if "/admin/callback" in r.url else None)
        answer = await page.goto(base + "/admin/grants")
        assert answer.status == 403 and await page.inner_text("h1") == "Not an administrator"
        assert "no grant allows user alice to use admin:console" in await page.inner_text(".note.bad")
        # The session cookie the sign-in set, sent again with its CSRF token: the POST is refused too.
        (callback,) = callbacks
        (value,) = re.findall(r"(?m)^mcp_acl_console=([^;]+)", await callback.header_value("set-cookie") or "")
        csrf = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "==="))["csrf"]
        await page.context.add_cookies([{"name": "mcp_acl_console", "value": value, "url": base}])
        form = {"principal": "role:intern", "target": "tool:sql.tables", "step": "commit", "csrf": csrf}
        refused = await page.request.post(base + "/admin/grants/add", form=form, headers={"Origin": base})
        assert refused.status == 403 and "Not an administrator" in await refused.text()
        assert intern_grants(world.engine) == []
        with world.engine.connect() as conn:
            signed_in = conn.execute(select(t.audit_events.c.subject, t.audit_events.c.decision)
                                     .where(t.audit_events.c.action == "console sign-in")).all()
        assert [tuple(r) for r in signed_in] == [("alice", "allow")]
