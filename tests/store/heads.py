"""The newest migration heads, read from the migrations folder (so a new migration does not break old tests)."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from mcp_acl.store.migrate import alembic_config


def script_heads(engine: Engine) -> set[str]:
    """The head revisions of the migration scripts."""
    return set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
