"""Personal access tokens: opaque tokens for clients that can only send a static header.

`personal_tokens` holds one row per named token: its SHA-256 digest (never
the token), its user and client, who made it and when, its expiry and when
it was last used. Its revocation lives in the access-token ledger
(`access_tokens`, migration 0009) under the row's `jti`, so revoking a
user or client, or the token by name, uses the one deny-list.

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "personal_tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_personal_tokens_token_hash"),
    )
    op.create_index("ix_personal_tokens_subject", "personal_tokens", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_personal_tokens_subject", "personal_tokens")
    op.drop_table("personal_tokens")
