"""Applying the Alembic migrations (`mcp-acl init`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from mcp_acl._bundled import bundled_dir


def migrations_dir() -> Path:
    """The Alembic migrations folder: inside an installed wheel, or at the top of the source tree."""
    return bundled_dir("migrations", "env.py")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to `engine` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; safe to run again."""
    command.upgrade(alembic_config(engine), "head")


def current_heads(engine: Engine) -> set[str]:
    """The migration revisions the database is at (empty if never initialised)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
