"""Applying the Alembic migrations (`mcp-acl init`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from mcp_acl._bundled import bundled_dir

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic's default bookkeeping table (migrations/env.py does not rename it).
VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    """The Alembic migrations folder: inside an installed wheel, or at the top of the source tree."""
    return bundled_dir("migrations", "env.py")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to `engine` (no alembic.ini needed)."""
    # Alembic is imported here, not at the top: only `init` and friends
    # migrate, and every other command should start without loading it.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; safe to run again."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def current_heads(engine: Engine) -> set[str]:
    """The migration revisions the database is at (empty if never initialised).

    Read straight from Alembic's version table, as Alembic itself does, so a
    command that only checks the database is initialised need not load Alembic.
    """
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return set()
        return set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())
