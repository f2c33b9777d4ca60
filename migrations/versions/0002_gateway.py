"""Gateway: sessions, the hash-chained audit log, the embedded issuer's signing keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("issuer", sa.String(1024), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.Integer, nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("issuer", sa.String(1024), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("action", sa.String(32), nullable=True),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("args_digest", sa.String(64), nullable=True),
        sa.Column("decision", sa.String(8), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("grant_id", sa.Integer, nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("private_jwk", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("retired_at", UTCDateTime, nullable=True),
        sa.Column("publish_until", UTCDateTime, nullable=True),
    )


def downgrade() -> None:
    for name in ("signing_keys", "audit_events", "sessions"):
        op.drop_table(name)
