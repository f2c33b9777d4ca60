"""The audit head: one row holding the newest audit row's id and hash.

Every append reads it (inside the append lock) to number and link the next
row, and rewrites it in the same transaction; `audit verify` checks the
chain reaches it. An existing log gets the head of its chain as it stands.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_id", sa.Integer, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    events = sa.table("audit_events", sa.column("id", sa.Integer), sa.column("hash", sa.String))
    last = op.get_bind().execute(sa.select(events.c.id, events.c.hash).order_by(events.c.id.desc()).limit(1)).first()
    last_id, last_hash = (last.id, last.hash) if last else (0, GENESIS_HASH)
    op.bulk_insert(head, [{"id": 1, "last_id": last_id, "last_hash": last_hash}])


def downgrade() -> None:
    op.drop_table("audit_head")
