"""The policy loader sees every committed change, in this process or another."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

from mcp_acl.policy import Identity, decide
from mcp_acl.store import PolicyAdmin, PolicyLoader

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _seed(engine) -> int:
    admin = PolicyAdmin(engine)
    admin.add_role("analyst")
    admin.add_user("alice", ["analyst"])
    return admin.add_grant("role:analyst", "tool:files.read")


def test_revocation_in_another_process_is_seen_by_next_decision(engine, database_url):
    grant_id = _seed(engine)
    loader = PolicyLoader(engine)
    alice = Identity("alice")
    assert decide(loader.current(), alice, "tool:files.read", {}, NOW).allowed
    subprocess.run(
        [sys.executable, "-c",
         "import sys; from mcp_acl.store import make_engine, PolicyAdmin;"
         "PolicyAdmin(make_engine(sys.argv[1])).revoke(int(sys.argv[2]))",
         database_url, str(grant_id)],
        check=True,
    )
    decision = decide(loader.current(), alice, "tool:files.read", {}, NOW)
    assert not decision.allowed
    assert decision.reason == "no grant allows user alice to use tool:files.read"


def test_unchanged_revision_reuses_the_compiled_policy(engine):
    _seed(engine)
    loader = PolicyLoader(engine)
    assert loader.current() is loader.current()


def test_every_change_increments_the_revision(engine):
    admin = PolicyAdmin(engine)
    seen = [admin.revision()]
    admin.add_role("r")
    seen.append(admin.revision())
    admin.add_user("u", ["r"])
    seen.append(admin.revision())
    gid = admin.add_grant("user:u", "tool:x")
    seen.append(admin.revision())
    admin.revoke(gid)
    seen.append(admin.revision())
    admin.unassign("u", "r")
    seen.append(admin.revision())
    assert seen == sorted(set(seen)), seen
