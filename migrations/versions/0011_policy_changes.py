"""The policy change log: what each policy revision changed, for incremental reloads.

`policy_changes` holds (revision, kind, key) rows written in the same
transaction as the change: kind `grant` (key: the grant id), `user` (its
memberships and disabled flag), `client`, `role`. A revision with no row
changed something else; gateways then reload the whole policy.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
    )
    op.create_index("ix_policy_changes_revision", "policy_changes", ["revision"])


def downgrade() -> None:
    op.drop_index("ix_policy_changes_revision", "policy_changes")
    op.drop_table("policy_changes")
