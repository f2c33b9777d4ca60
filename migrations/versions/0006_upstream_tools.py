"""Pinned upstream tool definitions: a changed or new upstream tool is withheld until approved.

`upstreams.generation` goes up when an administrator asks serving gateways
to re-read an upstream (`upstream refresh`, `upstream approve`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_tools",
        sa.Column("upstream", sa.String(255), sa.ForeignKey("upstreams.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("tool", sa.String(255), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("pinned_by", sa.String(255), nullable=True),
        sa.Column("pinned_at", UTCDateTime, nullable=False),
    )
    op.add_column("upstreams", sa.Column("generation", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("upstreams") as batch:
        batch.drop_column("generation")
    op.drop_table("upstream_tools")
