"""Fixtures for the operations tests: the gateway harness's worlds."""

from gateway.harness import sqlite_world, world

__all__ = ["sqlite_world", "world"]
