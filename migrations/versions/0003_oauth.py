"""The embedded OAuth authorization server: client registrations, sign-in
requests, authorization codes and refresh tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CLIENT_COLUMNS = (
    ("token_endpoint_auth_method", sa.String(32)),
    ("client_secret_hash", sa.String(64)),
    ("redirect_uris", sa.Text),
    ("grant_types", sa.Text),
    ("scope", sa.Text),
    ("registered_via", sa.String(16)),
)


def _client_fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey("clients.client_id", ondelete="CASCADE", name=f"fk_{table}_client_id_clients")


def _user_fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey("users.name", ondelete="CASCADE", name=f"fk_{table}_user_name_users")


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        for name, type_ in _CLIENT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))

    op.create_table(
        "oauth_authorization_requests",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), _client_fk("oauth_authorization_requests"), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(255), _user_fk("oauth_authorization_requests"), nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("consumed_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("client_id", "state_hash", name="uq_oauth_authorization_requests_client_id"),
    )
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(255), _client_fk("oauth_codes"), nullable=False),
        sa.Column("user_name", sa.String(255), _user_fk("oauth_codes"), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(8), nullable=False),
        sa.Column("family_id", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "oauth_refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), _client_fk("oauth_refresh_tokens"), nullable=False),
        sa.Column("user_name", sa.String(255), _user_fk("oauth_refresh_tokens"), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_oauth_refresh_tokens_family_id", "oauth_refresh_tokens", ["family_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_refresh_tokens_family_id", table_name="oauth_refresh_tokens")
    for name in ("oauth_refresh_tokens", "oauth_codes", "oauth_authorization_requests"):
        op.drop_table(name)
    with op.batch_alter_table("clients") as batch:
        for name, _type in reversed(_CLIENT_COLUMNS):
            batch.drop_column(name)
