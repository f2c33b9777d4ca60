"""Revocable access tokens: the issued-token ledger and deny-list, and a revocation mark on codes.

`access_tokens` records each access token the embedded issuer mints (jti,
user, client, refresh-token family, expiry) and any token revoked by its
jti; `revoked_at` set means the gateway refuses the token.
`oauth_codes.revoked_at` marks a revoked family before its first refresh
token exists.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_tokens",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("family_id", sa.String(64), nullable=True),
        sa.Column("issued_at", UTCDateTime, nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("revoked_by", sa.String(255), nullable=True),
    )
    for column in ("subject", "client_id", "family_id", "expires_at"):
        op.create_index(f"ix_access_tokens_{column}", "access_tokens", [column])
    op.add_column("oauth_codes", sa.Column("revoked_at", UTCDateTime, nullable=True))
    # Issuing reads a family's code, revoking a family marks it: by family, not by code.
    op.create_index("ix_oauth_codes_family_id", "oauth_codes", ["family_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_codes_family_id", "oauth_codes")
    with op.batch_alter_table("oauth_codes") as batch:
        batch.drop_column("revoked_at")
    op.drop_table("access_tokens")
