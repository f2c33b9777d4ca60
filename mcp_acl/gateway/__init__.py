"""The MCP side: server handlers, the catalogue, sessions, upstream tools."""
