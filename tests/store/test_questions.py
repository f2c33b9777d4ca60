"""Resolving a question's principal into the identity it is decided as."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mcp_acl.policy import Identity
from mcp_acl.store import AdminError, PolicyAdmin, PolicyLoader
from mcp_acl.store.questions import Question, ask, resolve, synthetic_member

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def admin(engine) -> PolicyAdmin:
    admin = PolicyAdmin(engine)
    admin.add_role("analyst")
    admin.add_user("alice", ["analyst"])
    admin.add_client("agent", restricted=True)
    return admin


def test_user_is_decided_with_its_client(admin):
    assert resolve(admin, Question("user:alice", "tool:x", client="agent")).identity == Identity("alice", "agent")


def test_client_is_a_service_identity(admin):
    assert resolve(admin, Question("client:agent", "tool:x")).identity == Identity(None, client_id="agent")


def test_role_is_a_synthetic_member_that_no_stored_user_can_be(admin):
    asker = resolve(admin, Question("role:analyst", "tool:x"))
    assert asker.as_role == "analyst"
    assert asker.identity == Identity(synthetic_member("analyst"), roles=frozenset({"analyst"}))
    assert " " in asker.identity.subject  # stored names cannot hold white space


def test_role_question_ignores_the_grants_of_real_members(admin):
    admin.add_grant("user:alice", "tool:x")
    question = Question("role:analyst", "tool:x")
    assert not ask(PolicyLoader(admin.engine).current(), resolve(admin, question), question, NOW).allowed


@pytest.mark.parametrize(
    ("question", "says"),
    [
        (Question("user:nobody", "tool:x"), "user 'nobody' does not exist"),
        (Question("user:alice", "tool:x", client="ghost"), "client 'ghost' does not exist"),
        (Question("client:agent", "tool:x", client="agent"), "leave out the client"),
        (Question("user:alice", "tool:*"), "names a pattern"),
        (Question("user:alice", "tool:x", args=[1]), "must be an object"),
    ],
)
def test_bad_question_is_refused(admin, question, says):
    with pytest.raises(AdminError, match=says.replace("(", r"\(")):
        resolve(admin, question)
