"""Migrations 0006 (pinned upstream tools, upstream generations) and 0010 (pinned upstream prompts) go up and down cleanly."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import make_engine, upgrade
from mcp_acl.store.migrate import alembic_config, current_heads
from tests.store.heads import script_heads


def test_0006_adds_and_removes_the_pins_table_and_the_generation_column(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "upstream_tools" in inspect(engine).get_table_names()
        assert "generation" in {c["name"] for c in inspect(engine).get_columns("upstreams")}
        command.downgrade(alembic_config(engine), "0005")
        assert current_heads(engine) == {"0005"}
        assert "upstream_tools" not in inspect(engine).get_table_names()
        assert "generation" not in {c["name"] for c in inspect(engine).get_columns("upstreams")}
        upgrade(engine)
        assert current_heads(engine) == script_heads(engine)
    finally:
        engine.dispose()


def test_0010_adds_and_removes_the_prompt_pins_table(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert "upstream_prompts" in inspect(engine).get_table_names()
        command.downgrade(alembic_config(engine), "0009")
        assert "upstream_prompts" not in inspect(engine).get_table_names()
        assert "upstream_tools" in inspect(engine).get_table_names()
        upgrade(engine)
        assert "upstream_prompts" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
