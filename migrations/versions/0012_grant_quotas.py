"""Quotas and rates on grants, and the table that counts calls against them.

`grants.quota_limit` / `grants.quota_rate` hold a quota as written
(`100/day`, `10/min`); `grant_usage` counts calls per caller principal,
grant, quota kind and fixed window (policy/quotas.py, store/usage.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("grants", sa.Column("quota_limit", sa.String(32), nullable=True))
    op.add_column("grants", sa.Column("quota_rate", sa.String(32), nullable=True))
    op.create_table(
        "grant_usage",
        sa.Column("principal", sa.String(512), nullable=False),
        sa.Column("grant_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("period", sa.Integer, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("principal", "grant_id", "kind", "window_start", name="pk_grant_usage"),
    )


def downgrade() -> None:
    op.drop_table("grant_usage")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("quota_rate")
        batch.drop_column("quota_limit")
