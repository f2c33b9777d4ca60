"""The token each exchanged (narrowed) token came from, so revoking it by jti reaches them.

`access_tokens.parent_jti` names the subject token of an RFC 8693 exchange
(store/token_ledger.py); revoking that jti revokes, in the same transaction,
every live token whose `parent_jti` it is. Indexed: the sweep finds
children by it. Tokens exchanged before this migration have none: revoking
their sign-in, user or client still reaches them.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("access_tokens", sa.Column("parent_jti", sa.String(255), nullable=True))
    op.create_index("ix_access_tokens_parent_jti", "access_tokens", ["parent_jti"])


def downgrade() -> None:
    op.drop_index("ix_access_tokens_parent_jti", "access_tokens")
    with op.batch_alter_table("access_tokens") as batch:
        batch.drop_column("parent_jti")
