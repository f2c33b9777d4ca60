"""The SQL tables (SQLAlchemy Core). Migrations in migrations/ create them."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

# Constraint names fixed, so migrations read the same on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite stores no offset, so values are normalised to UTC on the way in
    and marked UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("password_hash", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

role_members = Table(
    "role_members",
    metadata,
    Column("user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
    Column("role_name", String(255), ForeignKey("roles.name", ondelete="CASCADE"), primary_key=True),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("name", String(255), nullable=True),
    Column("restricted", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
)

grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(512), nullable=False, index=True),
    Column("effect", String(8), nullable=False),
    Column("target", Text, nullable=False),
    Column("condition", Text, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    Column("created_by", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# One row (id = 1): the revision number that every policy change increments.
policy_revision = Table(
    "policy_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# --- gateway: sessions, audit, the embedded issuer's signing keys ---------

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("issuer", String(1024), nullable=True),
    Column("subject", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("transport", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    # "closed" (the client went away) or "killed" (an admin ended it).
    Column("end_reason", String(16), nullable=True),
)

# Append-only and hash-chained: each row's `hash` covers its fields and the
# previous row's hash, so an edited, deleted or reordered row breaks the chain.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    # "decision", "outcome" (of an earlier decision, see ref_id) or "authentication".
    Column("kind", String(16), nullable=False),
    Column("ref_id", Integer, nullable=True),
    Column("session_id", String(128), nullable=True),
    Column("issuer", String(1024), nullable=True),
    Column("subject", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("action", String(32), nullable=True),
    Column("target", Text, nullable=True),
    Column("args_digest", String(64), nullable=True),
    Column("decision", String(8), nullable=True),
    Column("reason", Text, nullable=True),
    Column("grant_id", Integer, nullable=True),
    Column("revision", BigInteger, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(16), nullable=False),
    # The private JWK as JSON. Anyone who can read the database can mint
    # tokens; protect the database file accordingly.
    Column("private_jwk", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Set when a newer key takes over; the key stays in the JWKS until
    # `publish_until` so tokens it signed can still be verified.
    Column("retired_at", UTCDateTime, nullable=True),
    Column("publish_until", UTCDateTime, nullable=True),
)
