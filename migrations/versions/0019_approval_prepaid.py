"""Approval requests remember when the count taken at the ask was used by a run.

A call held for approval is counted against its quotas when it is asked
for; that count pays for one run. `prepaid_taken_at` is set by whichever
comes first, the held call's release or a 2026-07-28 retry naming the
request (`requestState`); any other release or retry of the same request
is counted on its own (gateway/holds.py).

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.add_column(sa.Column("prepaid_taken_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests") as batch:
        batch.drop_column("prepaid_taken_at")
