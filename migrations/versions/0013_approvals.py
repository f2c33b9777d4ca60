"""Approvals: a grant can hold its calls for a person's approval; the requests waiting.

`grants.approval_by` is NULL for a grant that needs no approval, else who may
approve (`admins`, or principals such as `role:lead,user:carol`).
`approval_requests` holds one row per held call (and, once approved with a
window, the approval that lets the same call through again until `valid_until`).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("approval_by", sa.String(1024), nullable=True))
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("grant_id", sa.Integer, nullable=False),
        sa.Column("grant_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approval_by", sa.String(1024), nullable=False),
        sa.Column("issuer", sa.String(1024), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("args_digest", sa.String(64), nullable=False),
        sa.Column("args", sa.Text, nullable=True),
        sa.Column("decision_audit_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_approval_requests_status", "approval_requests", ["status"])
    op.create_index("ix_approval_requests_args_digest", "approval_requests", ["args_digest"])


def downgrade() -> None:
    op.drop_index("ix_approval_requests_args_digest", "approval_requests")
    op.drop_index("ix_approval_requests_status", "approval_requests")
    op.drop_table("approval_requests")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("approval_by")
