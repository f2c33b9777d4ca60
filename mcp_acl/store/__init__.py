"""The SQL store: tables, engine set-up, migrations, loading the policy, writes."""

from mcp_acl.store.admin import AdminError, PolicyAdmin
from mcp_acl.store.engine import StoreError, make_engine
from mcp_acl.store.loader import PolicyLoader
from mcp_acl.store.migrate import upgrade

__all__ = ["AdminError", "PolicyAdmin", "PolicyLoader", "StoreError", "make_engine", "upgrade"]
