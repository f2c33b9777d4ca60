"""mcp-acl: identity-aware access control for MCP tools used by small language models."""

__version__ = "0.1.0"
