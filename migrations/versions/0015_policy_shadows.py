"""Shadow policies: a candidate policy decided beside the enforced one, and its differences.

`policy_shadows` holds each candidate file set with `mcp-acl policy shadow`
(the one without `stopped_at` is in force); `shadow_differences` one row per
call the candidate decided the other way.

Revision ID: 0015
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_shadows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("stopped_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "shadow_differences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shadow_id", sa.Integer, sa.ForeignKey("policy_shadows.id", ondelete="CASCADE"), nullable=False),
        sa.Column("audit_id", sa.Integer, nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("grant_id", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("shadow_grant", sa.Text, nullable=True),
        sa.Column("shadow_reason", sa.Text, nullable=False),
    )
    op.create_index("ix_shadow_differences_shadow_id", "shadow_differences", ["shadow_id"])


def downgrade() -> None:
    op.drop_index("ix_shadow_differences_shadow_id", "shadow_differences")
    op.drop_table("shadow_differences")
    op.drop_table("policy_shadows")
