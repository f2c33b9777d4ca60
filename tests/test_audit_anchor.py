"""Signed anchors: a checkpoint kept outside the database catches what the head record cannot."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timezone

import pytest
from joserfc.jwk import OKPKey
from sqlalchemy import delete, select, update

from mcp_acl.audit import AuditLog
from mcp_acl.audit.anchor import AnchorError, anchor_verified, load_key, read_anchor, sign_anchor
from mcp_acl.audit.verify import Anchor
from mcp_acl.audit.chain import row_hash, timestamp
from mcp_acl.policy import Decision, Identity
from mcp_acl.store.tables import audit_events as ev
from mcp_acl.store.tables import audit_head

NOW = datetime(2026, 12, 6, 3, 10, tzinfo=timezone.utc)


@pytest.fixture
def key(tmp_path) -> OKPKey:
    return load_key(tmp_path / "anchor.jwk", create=True)[0]


@pytest.fixture
def filled(engine) -> AuditLog:
    log = AuditLog(engine)
    for n in range(5):
        log.record_decision(session_id=None, identity=Identity("alice"), action="call", target="tool:x",
                            args={"n": n}, decision=Decision(n % 2 == 0, f"reason {n}"), latency_ms=0.1)
    return log


def anchor_now(log: AuditLog, key: OKPKey) -> Anchor:
    return read_anchor(anchor_verified(key, log.verify(), NOW), key)


def rewrite_from(engine, first: int, *, reason: str) -> None:
    """What someone with write access can do: change rows from `first` on and re-hash them and the head."""
    with engine.begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(ev).where(ev.c.id >= first - 1).order_by(ev.c.id))]
        prev = rows[0]["hash"]
        for row in rows[1:]:
            row.update(reason=reason, prev_hash=prev)
            row["hash"] = prev = row_hash(row | {"at": timestamp(row["at"])})
            conn.execute(update(ev).where(ev.c.id == row["id"]).values(reason=reason, prev_hash=row["prev_hash"], hash=row["hash"]))
        conn.execute(update(audit_head).values(last_hash=prev))


def test_a_fresh_anchor_verifies(filled, key):
    result = filled.verify(anchor_now(filled, key))
    assert (result.ok, result.count, result.anchored_id) == (True, 5, 5)


def test_an_anchor_still_verifies_after_more_appends(filled, key):
    anchor = anchor_now(filled, key)
    filled.record_authentication(reason="expired")
    assert filled.verify(anchor).ok


def test_an_anchor_of_an_empty_log_verifies(engine, key):
    log = AuditLog(engine)
    assert log.verify(anchor_now(log, key)).anchored_id == 0


def test_rows_deleted_with_the_head_rewritten_to_match_fail_the_anchor(filled, engine, key):
    anchor = anchor_now(filled, key)
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id >= 4))
        three = conn.execute(select(ev.c.hash).where(ev.c.id == 3)).scalar_one()
        conn.execute(update(audit_head).values(last_id=3, last_hash=three))
    assert filled.verify().ok  # the table alone cannot show it
    result = filled.verify(anchor)
    assert (result.ok, result.first_bad_id, result.problem) == (False, 4, "deleted")
    assert result.detail == "the chain ends at row 3 but the anchor of 2026-12-06 03:10:00Z (row 5) names row 5: rows were deleted from the end"


def test_a_deleted_head_and_rows_fail_the_anchor(filled, engine, key):
    anchor = anchor_now(filled, key)
    with engine.begin() as conn:
        conn.execute(delete(ev).where(ev.c.id == 5))
        conn.execute(delete(audit_head))
    result = filled.verify(anchor)
    assert (result.ok, result.problem) == (False, "deleted")


def test_a_chain_rewritten_from_some_row_on_fails_the_anchor(filled, engine, key):
    anchor = anchor_now(filled, key)
    rewrite_from(engine, 3, reason="nothing happened")
    assert filled.verify().ok  # consistent chain, consistent head
    result = filled.verify(anchor)
    assert (result.ok, result.first_bad_id, result.problem) == (False, 5, "edited")
    assert "row 5 is not the row the anchor of 2026-12-06 03:10:00Z (row 5) names" in result.detail


def test_an_altered_anchor_is_refused(key):
    token = sign_anchor(key, 5, "a" * 64, NOW)
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["head_id"] = 3
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(AnchorError, match="signature does not verify with this key: it was altered"):
        read_anchor(f"{header}.{body}.{signature}", key)


def test_an_anchor_signed_with_another_key_is_refused(key, tmp_path):
    other = load_key(tmp_path / "other.jwk", create=True)[0]
    with pytest.raises(AnchorError, match="signature does not verify"):
        read_anchor(sign_anchor(other, 5, "a" * 64, NOW), key)


def test_a_file_that_is_no_anchor_is_refused(key):
    with pytest.raises(AnchorError, match="this is not a signed anchor"):
        read_anchor("head 5 is fine, trust me", key)


def test_the_public_half_of_the_key_verifies_but_cannot_sign(key, tmp_path):
    public = tmp_path / "public.jwk"
    public.write_text(json.dumps(key.as_dict(private=False)))
    verifier = load_key(public)[0]
    assert read_anchor(sign_anchor(key, 1, "b" * 64, NOW), verifier).head_id == 1
    with pytest.raises(AnchorError, match="only a public key"):
        sign_anchor(verifier, 1, "b" * 64, NOW)


def test_a_new_key_file_is_private_to_its_owner_and_reused(tmp_path):
    path = tmp_path / "keys" / "anchor.jwk"
    first, made = load_key(path, create=True)
    assert made and (os.stat(path).st_mode & 0o777) == 0o600
    again, made_again = load_key(path, create=True)
    assert not made_again and again.thumbprint() == first.thumbprint()


def test_a_missing_or_unreadable_key_is_a_clear_error(tmp_path):
    with pytest.raises(AnchorError, match="no anchor key at .*missing.jwk"):
        load_key(tmp_path / "missing.jwk")
    (tmp_path / "rsa.jwk").write_text('{"kty": "RSA", "n": "x", "e": "AQAB"}')
    with pytest.raises(AnchorError, match="holds no Ed25519 JSON Web Key"):
        load_key(tmp_path / "rsa.jwk")
