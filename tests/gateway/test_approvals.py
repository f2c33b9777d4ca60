"""Calls held for approval, end to end: the real app over HTTP, the SDK's client, real tokens,
`mcp-acl approvals` in another process, SQLite and PostgreSQL (its approval wakes the
holding gateway by NOTIFY; SQLite's by the commit seen in the database's files).

alice (role analyst) may select from `orders` only with approval by role:lead (carol).
"""

from __future__ import annotations

import json

import anyio
import anyio.to_thread
import httpx2
import mcp_types as types
import pytest
from sqlalchemy import select

from mcp_acl.policy import Effect
from mcp_acl.store import PolicyAdmin
from mcp_acl.store import tables as t
from mcp_acl.store.approvals import ApprovalStore

from tests.support.held import held_call

from .harness import cli, connect, serve, text_of, wait_for

ORDERS = {"table": "orders"}


def approval_world(world, limit: str | None = None) -> int:
    """carol leads; alice's select on orders needs carol's (role:lead's) approval. Returns the grant's id.

    With `limit` (e.g. "1/day"), the grant is for any table and counted against that quota.
    """
    admin = PolicyAdmin(world.engine, actor="test")
    admin.add_role("lead")
    admin.add_user("carol", ["lead"])
    admin.revoke(world.grants["alice-select"])
    if limit is not None:
        return admin.add_grant("role:analyst", "tool:sql.select", approval_by="role:lead", limit=limit)
    return admin.add_grant(
        "role:analyst", "tool:sql.select", condition='args.table == "orders"', note="orders only", approval_by="role:lead"
    )


async def _accept(context, params) -> types.ElicitResult:
    """A client's answer to the approval page's elicitation: accepted (the approver decides, not the client)."""
    return types.ElicitResult(action="accept")


def usage(world, grant_id: int) -> list[int]:
    """The calls counted against the grant's quota, one number a window."""
    with world.engine.connect() as conn:
        return conn.execute(select(t.grant_usage.c.calls).where(t.grant_usage.c.grant_id == grant_id)).scalars().all()


def pending(world) -> list:
    return ApprovalStore(world.engine).listed()


async def one_pending(world):
    found = await wait_for(lambda: pending(world))
    assert len(found) == 1
    return found[0]


async def run_cli(env, world, *args: str):
    return await anyio.to_thread.run_sync(lambda: cli(env, *args, "--database", world.database_url))


def hold_rows(world) -> list[str]:
    return [r.action for r in world.audit_rows(kind="hold")]


async def ended(world) -> list[tuple[str, str | None]]:
    """Each decision row on sql.select with its outcome, once every allow has one (written just after the answer)."""

    def read() -> list[tuple[str, str | None]] | None:
        outcomes = {o.ref_id: o.outcome for o in world.audit_rows(kind="outcome")}
        rows = [(d.decision, outcomes.get(d.id)) for d in world.audit_rows(kind="decision", target="tool:sql.select")]
        return rows if all(outcome is not None for decision, outcome in rows if decision == "allow") else None

    return await wait_for(read)


async def test_a_held_call_runs_once_a_lead_approves_it_from_the_cli(world, subprocess_env):
    grant_id = approval_world(world)
    gateway = world.gateway()
    # No poll within the test's life: only the approver's commit, heard (NOTIFY, or SQLite's files), wakes the call.
    gateway.invoker.holds.poll = 3600
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            tools = {tool.name: tool for tool in (await alice.list_tools()).tools}
            # The model reads before it calls that a person must approve, and who.
            assert "each call waits for approval by role:lead" in tools["sql.select"].description
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                request = held.request
                assert (request.subject, request.target, request.args, request.grant_id) == ("alice", "tool:sql.select", ORDERS, grant_id)
                listed = await run_cli(subprocess_env, world, "approvals", "list")
                assert listed.returncode == 0 and request.id in listed.stdout and "orders" in listed.stdout
                # alice cannot approve her own call, nor can someone outside role:lead.
                own = await run_cli(subprocess_env, world, "approvals", "approve", request.id, "--as", "alice")
                assert own.returncode == 2 and "cannot answer it" in own.stderr
                bob = await run_cli(subprocess_env, world, "approvals", "approve", request.id, "--as", "bob")
                assert bob.returncode == 2 and "must be answered by role:lead" in bob.stderr
                approved = await run_cli(subprocess_env, world, "approvals", "approve", request.id, "--as", "carol")
                assert approved.returncode == 0, approved.stderr
    result = held.result
    assert not result.is_error, text_of(result)
    assert "acme" in text_of(result)
    assert hold_rows(world) == ["approval/request", "approval/approve"]
    approve_row = world.audit_rows(kind="hold")[-1]
    assert approve_row.subject == "carol" and "approved by carol" in approve_row.reason
    # Decided again at release: the held admission, then the one that ran (with its outcome).
    decisions = world.audit_rows(kind="decision", target="tool:sql.select")
    assert [d.decision for d in decisions] == ["allow", "allow"]
    assert [o.ref_id for o in world.audit_rows(kind="outcome")] == [decisions[-1].id]


async def test_a_denial_is_a_refusal_that_says_who_and_why(world, subprocess_env):
    approval_world(world)
    told: list[str] = []

    async def progress(value, total, message) -> None:
        told.append(message)

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS, progress_callback=progress), lambda: pending(world)) as held:
                request = held.request
                # A caller that asked for progress hears, while it waits, who must approve and how.
                await wait_for(lambda: told)
                assert told[0].startswith(f"tool:sql.select needs approval by role:lead before it runs (approval request {request.id})")
                denied = await run_cli(subprocess_env, world, "approvals", "deny", request.id, "--reason", "not this week", "--as", "carol")
                assert denied.returncode == 0, denied.stderr
    result = held.result
    assert result.is_error
    assert text_of(result) == f"Refused: tool:sql.select was denied by carol (approval request {request.id}): not this week."
    assert hold_rows(world) == ["approval/request", "approval/deny"]
    # The held allow ends saying the call did not run.
    assert await ended(world) == [("allow", "error")]


async def test_a_time_out_is_a_refusal_naming_the_approvers(sqlite_world):
    world = sqlite_world
    approval_world(world)
    gateway = world.gateway()
    gateway.invoker.holds.timeout = 0.3
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            result = await alice.call_tool("sql.select", ORDERS)
    assert result.is_error
    assert text_of(result).startswith("Refused: tool:sql.select needs approval by role:lead, and it was not approved within 0.3 seconds")
    assert hold_rows(world) == ["approval/request", "approval/timeout"]
    assert await ended(world) == [("allow", "error")]
    [request] = ApprovalStore(world.engine).listed(pending_only=False)
    assert request.status == "timed_out" and request.args is None  # the arguments are kept only while pending


async def test_an_approval_never_outlives_a_deny_added_while_the_call_waits(world, subprocess_env):
    approval_world(world)
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                PolicyAdmin(world.engine).add_grant("user:alice", "tool:sql.select", effect=Effect.DENY)
                approved = await run_cli(subprocess_env, world, "approvals", "approve", held.request.id, "--as", "carol")
                assert approved.returncode == 0, approved.stderr
    result = held.result
    assert result.is_error
    assert text_of(result).startswith("Refused: tool:sql.select is denied to user alice by grant #")
    # The held allow, then the refusal at release: the allow ends saying the call did not run.
    assert await ended(world) == [("allow", "error"), ("deny", None)]


async def test_a_call_given_up_while_held_ends_saying_it_did_not_run(sqlite_world):
    world = sqlite_world
    approval_world(world)
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                held.cancel()
            # The caller's cancellation reaches the gateway: the request is withdrawn and the held allow ends.
            assert await ended(world) == [("allow", "error")]
    assert hold_rows(world) == ["approval/request", "approval/cancel"]


async def test_a_server_that_cannot_hold_refuses_and_the_allow_ends_saying_so(sqlite_world):
    world = sqlite_world
    approval_world(world)
    gateway = world.gateway()
    gateway.invoker.holds = None
    with serve(world, gateway) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            result = await alice.call_tool("sql.select", ORDERS)
            assert result.is_error and "this server cannot hold calls for approval" in text_of(result)
            assert await ended(world) == [("allow", "error")]


async def test_a_revoked_grant_cannot_be_approved_and_a_window_ends_with_its_grant(sqlite_world, subprocess_env):
    world = sqlite_world
    grant_id = approval_world(world)
    admin = PolicyAdmin(world.engine)
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice:
            # Approved with --for: the same call passes again without asking.
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                approved = await run_cli(subprocess_env, world, "approvals", "approve", held.request.id, "--for", "1h", "--as", "carol")
                assert approved.returncode == 0, approved.stderr
            again = await alice.call_tool("sql.select", ORDERS)
            assert not again.is_error and pending(world) == []
            assert hold_rows(world)[-1] == "approval/reuse"
            # Other arguments are another call: held (and here denied).
            async with held_call(lambda: alice.call_tool("sql.select", {"table": "orders", "limit": 1}), lambda: pending(world)) as held:
                await run_cli(subprocess_env, world, "approvals", "deny", held.request.id, "--reason", "no", "--as", "carol")
            assert held.result.is_error
            # The grant is revoked and made again, the same: the window it was given under is gone.
            admin.revoke(grant_id)
            admin.add_grant("role:analyst", "tool:sql.select", condition='args.table == "orders"', approval_by="role:lead")
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                # Revoked while pending: nothing left to approve.
                admin.revoke(held.request.grant_id)
                refused = await run_cli(subprocess_env, world, "approvals", "approve", held.request.id, "--as", "carol")
                assert refused.returncode == 2 and "is gone: nothing to approve" in refused.stderr
                held.cancel()
    with world.engine.connect() as conn:
        statuses = list(conn.execute(select(t.approval_requests.c.status).order_by(t.approval_requests.c.created_at)).scalars())
    assert statuses[:2] == ["approved", "denied"]


async def test_url_mode_elicitation_points_a_2025_11_25_client_to_the_approval_page(sqlite_world, subprocess_env):
    world = sqlite_world
    approval_world(world)
    shown: list[types.ElicitRequestURLParams] = []

    async def elicit(context, params):
        shown.append(params)
        return types.ElicitResult(action="accept")

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), elicitation_callback=elicit) as alice:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                request = held.request
                await wait_for(lambda: shown)
                # Under the server's public address (the settings'); this test's server listens on another port.
                assert shown[0].url == f"{world.settings.embedded_issuer_url}/approvals/{request.id}"
                async with httpx2.AsyncClient() as http:
                    page = await http.get(f"{live.base}/approvals/{request.id}")
                    missing = await http.get(f"{live.base}/approvals/0000")
                assert missing.status_code == 404
                assert page.status_code == 200 and request.id in page.text and "role:lead" in page.text
                assert "orders" not in page.text  # the arguments are for approvers on the CLI and in the console only
                assert 'href="/admin/approvals"' in page.text
                assert "role:lead" in shown[0].message and f"mcp-acl approvals approve {request.id}" in shown[0].message
                await run_cli(subprocess_env, world, "approvals", "approve", request.id, "--as", "carol")
    assert not held.result.is_error, text_of(held.result)


async def test_input_required_carries_a_2026_07_28_client_through_the_approval(sqlite_world, subprocess_env):
    world = sqlite_world
    approval_world(world)
    shown: list = []

    async def elicit(context, params):
        shown.append(params)
        return types.ElicitResult(action="accept")

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), mode="auto", elicitation_callback=elicit) as alice:
            # Driven by hand first: the first answer is `input_required`, pointing at the page.
            first = await alice.session.call_tool("sql.select", ORDERS, allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult)
            request = await one_pending(world)
            assert first.request_state == request.id
            assert first.input_requests["approval"].params.url.endswith(f"/approvals/{request.id}")
            # Someone else's state, or this state for other arguments, is refused.
            other = await alice.session.call_tool("sql.select", {"table": "customers"}, request_state=request.id, allow_input_required=True)
            assert other.is_error
            # The SDK's own driver: it shows the URL, retries with the state, and the retry waits for the approval.
            async with anyio.create_task_group() as tg:
                results = []

                async def call() -> None:
                    results.append(await alice.call_tool("sql.select", ORDERS))

                tg.start_soon(call)
                await wait_for(lambda: len(pending(world)) == 2)
                for waiting in pending(world):
                    done = await run_cli(subprocess_env, world, "approvals", "approve", waiting.id, "--as", "carol")
                    assert done.returncode == 0, done.stderr
            [result] = results
            assert shown and not result.is_error, text_of(result)
            assert "acme" in text_of(result)
            # The first request was approved too (above) and never retried: its retry runs once;
            # one approval, one run, so replaying its state again gets a refusal.
            retried = await alice.session.call_tool("sql.select", ORDERS, request_state=request.id, allow_input_required=True)
            assert not retried.is_error and "acme" in text_of(retried)
            replayed = await alice.session.call_tool("sql.select", ORDERS, request_state=request.id, allow_input_required=True)
            assert replayed.is_error and "was already used" in text_of(replayed)
            assert "acme" not in text_of(replayed)


async def test_a_2026_07_28_user_who_declines_the_approval_page_withdraws_the_request(sqlite_world):
    world = sqlite_world
    approval_world(world)

    async def decline(context, params):
        return types.ElicitResult(action="decline")

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), mode="auto", elicitation_callback=decline) as alice:
            result = await alice.call_tool("sql.select", ORDERS)
    assert result.is_error and "the request was withdrawn" in text_of(result)
    [request] = ApprovalStore(world.engine).listed(pending_only=False)
    assert request.status == "cancelled"
    assert hold_rows(world) == ["approval/request", "approval/cancel"]


async def test_check_and_grants_show_the_hold(sqlite_world, subprocess_env):
    world = sqlite_world
    approval_world(world)
    checked = await run_cli(subprocess_env, world, "check", "user:alice", "tool:sql.select", "--args", json.dumps(ORDERS))
    assert checked.returncode == 0 and "held" in checked.stdout and "role:lead" in checked.stdout
    listed = await run_cli(subprocess_env, world, "grants", "--json")
    assert [g["approval_by"] for g in json.loads(listed.stdout) if g["approval_by"]] == ["role:lead"]
    bad = await run_cli(subprocess_env, world, "grant", "role:analyst", "tool:files.list", "--approval-by", "client:x")
    assert bad.returncode == 2 and "a client cannot approve" in bad.stderr
    missing = await run_cli(subprocess_env, world, "grant", "role:analyst", "tool:files.list", "--approval-by", "role:nobody")
    assert missing.returncode == 2 and "role 'nobody' does not exist" in missing.stderr


@pytest.mark.parametrize("args", [("approve", "feedbeef0000"), ("deny", "feedbeef0000", "--reason", "x")])
async def test_an_unknown_request_is_one_line_and_exit_2(sqlite_world, subprocess_env, args):
    done = await run_cli(subprocess_env, sqlite_world, "approvals", *args)
    assert done.returncode == 2 and "no approval request 'feedbeef0000'" in done.stderr


# How each protocol era's client meets a held call: 2025-11-25 waits inside the call; 2026-07-28
# (the SDK's driver in `auto` mode) is answered `input_required`, retries with the request's state, and is held.
ERAS = {"2025-11-25": {}, "2026-07-28": {"mode": "auto", "elicitation_callback": _accept}}


@pytest.mark.parametrize("era", ERAS)
async def test_a_held_call_under_a_quota_is_counted_once_when_asked_not_again_at_release(sqlite_world, subprocess_env, era):
    world = sqlite_world
    grant_id = approval_world(world, limit="1/day")
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), **ERAS[era]) as alice:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                approved = await run_cli(subprocess_env, world, "approvals", "approve", held.request.id, "--as", "carol")
                assert approved.returncode == 0, approved.stderr
            # The quota of one is spent by the approved call (a retry and its release are that one call):
            # the next is refused before anyone is asked.
            again = await alice.call_tool("sql.select", ORDERS)
    assert not held.result.is_error, text_of(held.result)
    assert again.is_error and "used up the quota" in text_of(again)
    assert usage(world, grant_id) == [1]
    assert hold_rows(world) == ["approval/request", "approval/approve"]


async def test_a_call_released_under_another_grant_is_counted_against_that_grants_quota(sqlite_world, subprocess_env):
    world = sqlite_world
    approval_world(world)  # the grant the call is held under has no quota: nothing is counted when asked
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice")) as alice, connect(live.mcp_url, world.token("alice")) as other:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                # While it waits, alice gets a grant of her own that needs no approval, at most once a day...
                limited = PolicyAdmin(world.engine).add_grant("user:alice", "tool:sql.select", limit="1/day")
                # ... and spends it on another call.
                direct = await other.call_tool("sql.select", ORDERS)
                assert not direct.is_error, text_of(direct)
                approved = await run_cli(subprocess_env, world, "approvals", "approve", held.request.id, "--as", "carol")
                assert approved.returncode == 0, approved.stderr
    # Released, the call is decided by that grant: counted now, and refused, its quota being used up.
    assert held.result.is_error and "has used up the quota for tool:sql.select" in text_of(held.result)
    assert f"grant #{limited}" in text_of(held.result)
    assert await ended(world) == [("allow", "error"), ("allow", "ok"), ("deny", None)]
    assert usage(world, limited) == [1]


async def test_a_call_released_under_another_grant_that_needs_approval_is_refused(sqlite_world, subprocess_env):
    world = sqlite_world
    held_under = approval_world(world)
    admin = PolicyAdmin(world.engine)
    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice", "ollama-agent")) as alice:
            async with held_call(lambda: alice.call_tool("sql.select", ORDERS), lambda: pending(world)) as held:
                # While it waits, the restricted client's own grant comes to need approval,
                # and alice gets one that needs none: the client's now decides the call.
                for plain in admin.list_grants("client:ollama-agent", "tool:sql.select"):
                    admin.revoke(plain.id)
                admin.add_grant("client:ollama-agent", "tool:sql.select", approval_by="role:lead")
                admin.add_grant("user:alice", "tool:sql.select")
                approved = await run_cli(subprocess_env, world, "approvals", "approve", held.request.id, "--as", "carol")
                assert approved.returncode == 0, approved.stderr
    assert held.result.is_error
    assert text_of(held.result) == (
        f"Refused: tool:sql.select was approved under grant #{held_under}, which no longer decides this call; it needs a new approval."
    )
    # Allowed at release, but not run: both allows end saying so.
    assert await ended(world) == [("allow", "error"), ("allow", "error")]


async def test_the_count_made_when_asked_pays_for_one_run_however_often_its_request_is_retried(sqlite_world, subprocess_env):
    world = sqlite_world
    grant_id = approval_world(world, limit="2/day")

    with serve(world) as live:
        async with connect(live.mcp_url, world.token("alice"), mode="auto", elicitation_callback=_accept) as alice:
            first = await alice.session.call_tool("sql.select", ORDERS, allow_input_required=True)
            assert isinstance(first, types.InputRequiredResult) and usage(world, grant_id) == [1]
            # Two retries naming the one request wait together; approved for an hour, both run.
            results = []
            async with anyio.create_task_group() as tg:

                async def retry() -> None:
                    results.append(await alice.session.call_tool("sql.select", ORDERS, request_state=first.request_state, allow_input_required=True))

                tg.start_soon(retry)
                tg.start_soon(retry)
                await wait_for(lambda: len(world.audit_rows(kind="decision", target="tool:sql.select")) == 3)
                approved = await run_cli(subprocess_env, world, "approvals", "approve", first.request_state, "--for", "1h", "--as", "carol")
                assert approved.returncode == 0, approved.stderr
            # The ask's count paid for one of them; the other was counted as the call it is.
            assert [r.is_error for r in results] == [False, False], [text_of(r) for r in results]
            assert usage(world, grant_id) == [2]
            # The quota is spent: a third retry of the same request is refused by it.
            third = await alice.session.call_tool("sql.select", ORDERS, request_state=first.request_state, allow_input_required=True)
    assert third.is_error and "used up the quota" in text_of(third)
