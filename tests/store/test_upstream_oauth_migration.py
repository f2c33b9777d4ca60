"""Migration 0008 (an upstream's OAuth settings) goes up and down cleanly, keeping the upstreams."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from mcp_acl.store import PolicyAdmin, make_engine, upgrade
from mcp_acl.store.migrate import alembic_config
from mcp_acl.store.upstreams import Upstream, UpstreamOAuth, add_upstream, get_upstream


def test_0008_adds_and_removes_the_oauth_column(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        oauth = UpstreamOAuth(client_id="gateway", client_secret="env:UPSTREAM_SECRET", scope="tools")
        add_upstream(PolicyAdmin(engine), Upstream(name="github", transport="http", url="https://example.com/mcp", oauth=oauth))
        with engine.connect() as conn:
            assert get_upstream(conn, "github").oauth == oauth
        command.downgrade(alembic_config(engine), "0006")
        assert "oauth" not in {c["name"] for c in inspect(engine).get_columns("upstreams")}
        upgrade(engine)
        with engine.connect() as conn:
            assert get_upstream(conn, "github").oauth is None
    finally:
        engine.dispose()
