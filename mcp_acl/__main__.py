"""`python -m mcp_acl` runs the admin CLI."""

from mcp_acl.cli import main

main()
