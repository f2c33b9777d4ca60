"""Upstream MCP servers: their tools join the catalogue under their name.

Credentials are stored as references (`env:VAR`, `file:/path`) only.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstreams",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("command", sa.Text, nullable=True),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("timeout_seconds", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upstreams")
