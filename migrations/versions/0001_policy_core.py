"""Policy core: users, roles, memberships, clients, grants, revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from mcp_acl.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "roles",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "role_members",
        sa.Column("user_name", sa.String(255), sa.ForeignKey("users.name", ondelete="CASCADE", name="fk_role_members_user_name_users"), primary_key=True),
        sa.Column("role_name", sa.String(255), sa.ForeignKey("roles.name", ondelete="CASCADE", name="fk_role_members_role_name_roles"), primary_key=True),
    )
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("restricted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(512), nullable=False),
        sa.Column("effect", sa.String(8), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("condition", sa.Text, nullable=True),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("effect IN ('allow', 'deny')", name="ck_grants_effect"),
    )
    op.create_index("ix_grants_principal", "grants", ["principal"])
    op.create_table(
        "policy_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO policy_revision (id, revision) VALUES (1, 1)")


def downgrade() -> None:
    for name in ("policy_revision", "grants", "clients", "role_members", "roles", "users"):
        op.drop_table(name)
