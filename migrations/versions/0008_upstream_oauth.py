"""OAuth settings of an upstream (client credentials, token exchange) as JSON.

The client secret is a reference (`env:VAR`, `file:/path`) like every other
upstream credential; no secret value is ever stored.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("upstreams", sa.Column("oauth", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upstreams") as batch:
        batch.drop_column("oauth")
