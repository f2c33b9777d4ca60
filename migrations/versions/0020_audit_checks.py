"""The last full verification of the audit chain, and how far the chain has been checked since.

One row (id = 1), written by a full verification (`mcp-acl audit verify`,
`audit anchor`, the console's "Verify now") and moved forward by the
console's overview, which checks only the rows added since (audit/checks.py).
No row until the first full verification.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("verified_at", UTCDateTime, nullable=False),
        sa.Column("verified_by", sa.String(255), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("first_bad_id", sa.Integer, nullable=True),
        sa.Column("problem", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("head_hash", sa.String(64), nullable=True),
        sa.Column("checked_id", sa.Integer, nullable=False),
        sa.Column("checked_hash", sa.String(64), nullable=False),
        sa.Column("checked_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_checks")
