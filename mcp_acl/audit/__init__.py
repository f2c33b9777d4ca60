"""The audit log: every decision, outcome and refused sign-in, hash-chained in SQL."""

from mcp_acl.audit.chain import GENESIS_HASH, args_digest, canonical_json
from mcp_acl.audit.appender import PolicyMoved
from mcp_acl.audit.log import AuditError, AuditLog
from mcp_acl.audit.verify import VerifyResult

__all__ = ["GENESIS_HASH", "AuditError", "AuditLog", "PolicyMoved", "VerifyResult", "args_digest", "canonical_json"]
