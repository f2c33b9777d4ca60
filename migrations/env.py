"""Alembic environment: run with the engine mcp-acl hands over, or MCP_ACL_DATABASE_URL."""

from alembic import context

from mcp_acl.config import database_url
from mcp_acl.store.engine import make_engine
from mcp_acl.store.tables import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(database_url())

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
