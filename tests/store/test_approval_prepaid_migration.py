"""Migration 0019 (approval_requests.prepaid_taken_at) goes up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def columns(engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("approval_requests")}


def test_0019_adds_and_removes_prepaid_taken_at(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "prepaid_taken_at" in columns(engine)
        command.downgrade(alembic_config(engine), "0017")
        assert current_heads(engine) == {"0017"}
        assert "prepaid_taken_at" not in columns(engine) and "valid_until" in columns(engine)
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
        assert "prepaid_taken_at" in columns(engine)
    finally:
        engine.dispose()
