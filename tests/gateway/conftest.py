"""Fixtures for the gateway's end-to-end tests (see harness.py)."""

from __future__ import annotations

import pytest

from .harness import World, make_world


@pytest.fixture
def world(database_url, tmp_path) -> World:
    """The test world on each database (SQLite and PostgreSQL)."""
    w = make_world(database_url, tmp_path / "home")
    yield w
    w.engine.dispose()


@pytest.fixture
def sqlite_world(sqlite_url, tmp_path) -> World:
    """The test world on SQLite only."""
    w = make_world(sqlite_url, tmp_path / "home")
    yield w
    w.engine.dispose()
