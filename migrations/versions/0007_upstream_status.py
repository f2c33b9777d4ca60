"""Upstream health as serving gateways see it, and when an upstream's tools were first recorded.

- `upstream_status`: one row per upstream, upserted by a serving gateway when
  its connection opens, fails or is re-read (never on the call path), so
  `upstream list` in another process can show state, tool counts and the
  last error. No secrets: error texts are scrubbed of credential values.
- `upstreams.pinned_at`: set when the tool definitions were recorded
  (`upstream add` connects and pins them, `upstream approve`); NULL means
  nothing was recorded yet, so a gateway pins on first use. It tells "no
  tools pinned because the upstream offered none" from "never pinned".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upstream_status",
        sa.Column("upstream", sa.String(255), sa.ForeignKey("upstreams.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tools_listed", sa.Integer, nullable=True),
        sa.Column("tools_withheld", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_seen_at", UTCDateTime, nullable=True),
        sa.Column("reported_by", sa.String(255), nullable=False),
        sa.Column("reported_at", UTCDateTime, nullable=False),
    )
    op.add_column("upstreams", sa.Column("pinned_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upstreams") as batch:
        batch.drop_column("pinned_at")
    op.drop_table("upstream_status")
