"""Grants, identities and decisions as plain data."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from mcp_acl.policy import Decision, Effect, Grant, Identity
from mcp_acl.policy.model import new_decision


def test_grant_describes_itself_in_one_line():
    assert Grant(3, "role:analyst", Effect.ALLOW, "tool:files.*").describe() == "#3 allow role:analyst tool:files.*"
    conditional = Grant(4, "user:a", Effect.DENY, "tool:t", "args.n > 1")
    assert conditional.describe() == "#4 deny user:a tool:t when args.n > 1"


def test_limit_text_prefers_the_note_to_the_condition():
    assert Grant(1, "user:a", Effect.ALLOW, "tool:t", "args.n > 1", note="small n").limit_text() == "small n"
    assert Grant(1, "user:a", Effect.ALLOW, "tool:t", "args.n > 1").limit_text() == "only when args.n > 1"
    assert Grant(1, "user:a", Effect.ALLOW, "tool:t").limit_text() is None


def test_identity_without_subject_is_a_service():
    assert Identity(None, "svc").is_service
    assert not Identity("alice", "app").is_service


def test_decision_without_grant_has_no_grant_id():
    assert Decision(False, "no grant").grant_id is None
    assert Decision(True, "ok", Grant(2, "user:a", Effect.ALLOW, "tool:t")).grant_id == 2


def test_new_decision_equals_the_same_decision_built_normally():
    grant = Grant(2, "user:a", Effect.ALLOW, "tool:t")
    assert new_decision(True, "ok", grant, 4, (2,)) == Decision(True, "ok", grant, 4, (2,))
    assert new_decision(False, "no") == Decision(False, "no")


def test_new_decision_is_frozen():
    decision = new_decision(True, "ok")
    with pytest.raises(FrozenInstanceError):
        decision.allowed = False  # type: ignore[misc]
