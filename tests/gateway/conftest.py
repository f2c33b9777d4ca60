"""Fixtures for the gateway's end-to-end tests (defined in harness.py, shared with tests/cli)."""

from .harness import sqlite_world, world

__all__ = ["sqlite_world", "world"]
