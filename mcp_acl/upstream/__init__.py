"""Upstream MCP servers: one pooled client session each, whose tools join the catalogue as NAME.tool.

An upstream is one more source of catalogue entries (see gateway/specs.py):
its tools become ToolSpecs whose handlers forward tools/call over the
upstream's session, so the invoker decides, audits and records them exactly
like built-in tools.
"""

from mcp_acl.upstream.pool import UpstreamPool

__all__ = ["UpstreamPool"]
