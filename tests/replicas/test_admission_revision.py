"""An allow is committed only while its policy revision is current: a change committed
by another process between the decision and its audit row makes the call decided again."""

from __future__ import annotations

from mcp_acl.audit import AuditLog, PolicyMoved
from mcp_acl.gateway.invocation import DECIDE_ATTEMPTS, UNSETTLED
from mcp_acl.policy import Decision, Identity
from mcp_acl.store import PolicyAdmin, PolicyLoader

from gateway.harness import world  # noqa: F401 (fixture)

ALICE = Identity("alice", client_id="mcp-acl-cli")


class CommitsAfterReading:
    """A policy source that, after handing out the policy, lets another process commit changes.

    Stands in for another replica whose revoke commits between this decision and its audit row.
    """

    def __init__(self, loader: PolicyLoader, changes: list) -> None:
        self.loader = loader
        self.changes = changes

    def current(self):
        policy = self.loader.current()
        if self.changes:
            self.changes.pop(0)()
        return policy


def test_an_append_for_a_moved_revision_writes_nothing(world):
    log = AuditLog(world.engine)
    before = log.last_id()
    revision = PolicyAdmin(world.engine).revision()
    PolicyAdmin(world.engine).add_role("auditors")
    try:
        log.record_decision(
            session_id=None, identity=ALICE, action="tools/call", target="tool:files.list", args={},
            decision=Decision(True, "allowed", None, revision), latency_ms=0.1, still_current=True,
        )
    except PolicyMoved as moved:
        assert (moved.decided, moved.current) == (revision, revision + 1)
    else:
        raise AssertionError("an allow at an old revision was written")
    assert log.last_id() == before
    # A refusal is never held back, and the chain goes on from where it was.
    log.record_decision(
        session_id=None, identity=ALICE, action="tools/call", target="tool:files.list", args={},
        decision=Decision(False, "refused", None, revision), latency_ms=0.1, still_current=True,
    )
    assert log.last_id() == before + 1 and log.verify().ok


async def test_a_revoke_committed_during_the_decision_refuses_the_call(world):
    gateway = world.gateway()
    admin = PolicyAdmin(world.engine)
    gateway.invoker.policies = CommitsAfterReading(PolicyLoader(world.engine), [lambda: admin.revoke(world.grants["alice-list"])])
    result = await gateway.invoker.call_tool(ALICE, None, "files.list", {})
    gateway.invoker.close()
    assert result.is_error and result.content[0].text.startswith("No tool named files.list")
    rows = world.audit_rows(kind="decision")
    # One row: the allow decided before the revoke was never written.
    assert [(r.decision, r.revision) for r in rows] == [("deny", admin.revision())]


async def test_a_policy_that_never_settles_refuses(world):
    gateway = world.gateway()
    admin = PolicyAdmin(world.engine)
    roles = [lambda n=n: admin.add_role(f"churn{n}") for n in range(DECIDE_ATTEMPTS)]
    gateway.invoker.policies = CommitsAfterReading(PolicyLoader(world.engine), roles)
    result = await gateway.invoker.call_tool(ALICE, None, "files.list", {})
    gateway.invoker.close()
    assert result.is_error and UNSETTLED in result.content[0].text
    assert [r.decision for r in world.audit_rows(kind="decision")] == ["deny"]
