"""Pinned upstream prompt definitions: a changed or new upstream prompt is withheld until approved, like a tool.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_prompts",
        sa.Column("upstream", sa.String(255), sa.ForeignKey("upstreams.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("prompt", sa.String(255), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("pinned_by", sa.String(255), nullable=True),
        sa.Column("pinned_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upstream_prompts")
