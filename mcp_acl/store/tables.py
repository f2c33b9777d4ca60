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
    UniqueConstraint,
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
    # OAuth registration (migration 0003); all NULL for a client that only
    # names a policy principal and never signs in through the embedded issuer.
    # RFC 7591 "none", "client_secret_basic" or "client_secret_post".
    Column("token_endpoint_auth_method", String(32), nullable=True),
    # SHA-256 (hex) of the generated secret; the secret itself is shown once.
    Column("client_secret_hash", String(64), nullable=True),
    Column("redirect_uris", Text, nullable=True),  # JSON list
    Column("grant_types", Text, nullable=True),  # JSON list
    Column("scope", Text, nullable=True),
    # "admin" (mcp-acl client add) or "dynamic" (RFC 7591 /register).
    Column("registered_via", String(16), nullable=True),
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
    # Quotas of an allow grant, as written (`100/day`, `10/min`); see policy/quotas.py.
    Column("quota_limit", String(32), nullable=True),
    Column("quota_rate", String(32), nullable=True),
    # Migration 0013: NULL, or who may approve each call it allows (policy/approval.py).
    Column("approval_by", String(1024), nullable=True),
)

# Calls counted against a grant's quota: one row per caller principal, grant,
# quota kind (limit or rate) and window (its start in seconds since the
# epoch). Moved by an upsert in the admission's transaction (store/usage.py).
grant_usage = Table(
    "grant_usage",
    metadata,
    Column("principal", String(512), primary_key=True),
    Column("grant_id", Integer, primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("period", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
)

# One row (id = 1): the revision number that every policy change increments.
policy_revision = Table(
    "policy_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# What each policy revision changed (migration 0010), written in the change's
# own transaction: gateways apply just these keys instead of reloading the
# world (store/loader.py). A revision with no row means "reload everything".
policy_changes = Table(
    "policy_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("revision", BigInteger, nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(512), nullable=False),
)

# MCP servers whose tools join the catalogue under `name.`; credentials are
# references (`env:VAR`, `file:/path`) kept as JSON text, never values.
upstreams = Table(
    "upstreams",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("transport", String(16), nullable=False),
    Column("url", Text, nullable=True),
    Column("command", Text, nullable=True),
    Column("args", Text, nullable=False, default="[]"),
    Column("env", Text, nullable=False, default="{}"),
    Column("headers", Text, nullable=False, default="{}"),
    Column("timeout_seconds", Float, nullable=False, default=30.0),
    # Raised to make serving gateways re-read the upstream's tools (refresh, approve).
    Column("generation", Integer, nullable=False, default=0, server_default="0"),
    # When its tool definitions were recorded (add, approve); NULL: pinned on a gateway's first read.
    Column("pinned_at", UTCDateTime, nullable=True),
    # OAuth towards the upstream's authorization server (JSON; the secret as a reference), or NULL.
    Column("oauth", Text, nullable=True),
    Column("created_by", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# The tool definitions (name, description, input schema, annotations; canonical
# JSON) an administrator trusts per upstream: a tool whose current definition
# differs, or that has no row, is withheld from every catalogue.
upstream_tools = Table(
    "upstream_tools",
    metadata,
    Column("upstream", String(255), ForeignKey("upstreams.name", ondelete="CASCADE"), primary_key=True),
    Column("tool", String(255), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("pinned_by", String(255), nullable=True),
    Column("pinned_at", UTCDateTime, nullable=False),
)

# The same for the upstreams' prompts (name, title, description, arguments):
# a prompt's description and arguments are read by the model, as a tool's are.
upstream_prompts = Table(
    "upstream_prompts",
    metadata,
    Column("upstream", String(255), ForeignKey("upstreams.name", ondelete="CASCADE"), primary_key=True),
    Column("prompt", String(255), primary_key=True),
    Column("definition", Text, nullable=False),
    Column("pinned_by", String(255), nullable=True),
    Column("pinned_at", UTCDateTime, nullable=False),
)

# Each upstream's health as the serving gateway last reported it (state
# `connected`, `down` or `stopped`; tool counts; the last error, scrubbed of
# credential values). Written when a connection opens, fails or is re-read.
upstream_status = Table(
    "upstream_status",
    metadata,
    Column("upstream", String(255), ForeignKey("upstreams.name", ondelete="CASCADE"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("tools_listed", Integer, nullable=True),
    Column("tools_withheld", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("reported_by", String(255), nullable=False),
    Column("reported_at", UTCDateTime, nullable=False),
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
    # "decision", "outcome" (of an earlier decision, see ref_id), "authentication",
    # or "approval" (an administrator approved, e.g., an upstream's tool definitions),
    # or "revocation" (an administrator revoked access tokens),
    # or "hold" (a step of a call held for approval: request, approve, deny, timeout, cancel, reuse).
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

# One row (id = 1), written in the same transaction as every append
# (migration 0004): the newest row's id and hash. The next row takes
# last_id + 1, so an id is never handed out twice, and `audit verify`
# finds rows deleted from the end (the chain stops short of the head).
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

# One row (id = 1, migration 0020): the last full verification of the chain
# (when, by whom, what it found) and the point (row id, hash) up to which
# the chain has been checked since; the overview checks only the rows after
# it (audit/checks.py). No row until the first full verification.
audit_checks = Table(
    "audit_checks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("verified_at", UTCDateTime, nullable=False),
    Column("verified_by", String(255), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("first_bad_id", Integer, nullable=True),
    Column("problem", String(16), nullable=True),
    Column("detail", Text, nullable=True),
    Column("head_hash", String(64), nullable=True),
    Column("checked_id", Integer, nullable=False),
    Column("checked_hash", String(64), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
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

# --- the embedded OAuth authorization server (migration 0003) -------------
# Codes, refresh tokens and sign-in requests are stored only as SHA-256
# digests of their random values: a copy of the database lets nobody use them.

# One row per authorization request, from GET /authorize until consent.
oauth_authorization_requests = Table(
    "oauth_authorization_requests",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    # Unique per client: an authorization request that repeats a `state` is refused.
    Column("state_hash", String(64), nullable=True),
    Column("params", Text, nullable=False),  # JSON: the validated query parameters
    # Digest of the browser cookie the request was started with (CSRF binding).
    Column("browser_hash", String(64), nullable=False),
    Column("user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), nullable=True),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("consumed_at", UTCDateTime, nullable=True),
    UniqueConstraint("client_id", "state_hash"),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=True),
    Column("scope", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    # The refresh-token family this code starts; revoked if the code is replayed.
    Column("family_id", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    # Set when the code's family is revoked (migration 0009): it marks the
    # family before any refresh token of it exists.
    Column("revoked_at", UTCDateTime, nullable=True),
)

oauth_refresh_tokens = Table(
    "oauth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    # Every token rotated from the same code shares a family; presenting a
    # used token revokes the whole family.
    Column("family_id", String(64), nullable=False, index=True),
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("user_name", String(255), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# --- access tokens and their revocation (migration 0009) ------------------
# One row per access token the embedded issuer minted (by its `jti`), kept
# until a day after it expires, so that revoking a user, a client or a
# refresh-token family can find that party's live tokens; plus a row for
# any other token revoked by its `jti` (an external issuer's). A row with
# `revoked_at` set is the deny-list entry the gateway looks up, by primary
# key, on every request.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("jti", String(255), primary_key=True),
    Column("subject", String(255), nullable=True, index=True),  # the user; None for a service token
    Column("client_id", String(255), nullable=True, index=True),
    Column("family_id", String(64), nullable=True, index=True),  # the refresh-token family it came from
    Column("issued_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", String(255), nullable=True),
    # The token it was exchanged from (RFC 8693, migration 0017): revoking that jti revokes this one too.
    Column("parent_jti", String(255), nullable=True, index=True),
)

# --- approvals (migration 0013) --------------------------------------------
# One row per call held for a person's approval (store/approvals.py). Status
# `pending` until approved, denied or timed out; an approval with a window
# (`valid_until`) lets the same user, target and arguments through again,
# while the grant it was asked under (id and creation time) still stands.
approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("grant_id", Integer, nullable=False),
    Column("grant_created_at", UTCDateTime, nullable=True),
    Column("approval_by", String(1024), nullable=False),
    Column("issuer", String(1024), nullable=True),
    Column("subject", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("session_id", String(128), nullable=True),
    Column("action", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("args_digest", String(64), nullable=False, index=True),
    # The arguments as JSON, shown to approvers by the CLI (never on the web page).
    Column("args", Text, nullable=True),
    Column("decision_audit_id", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("decided_by", String(255), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=True),
    Column("valid_until", UTCDateTime, nullable=True),
    # When the count taken at the ask paid for a run (its release, or a retry naming it; migration 0019).
    Column("prepaid_taken_at", UTCDateTime, nullable=True),
)

# --- shadow policies (migration 0015) ---------------------------------------
# A candidate policy file the gateways decide every call under as well,
# never enforcing it (`mcp-acl policy shadow FILE`). At most one row has no
# `stopped_at`: the candidate in force. Setting or stopping one is a policy
# change (kind `shadow` in policy_changes), so every replica picks it up.
policy_shadows = Table(
    "policy_shadows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("document", Text, nullable=False),  # the candidate file's text, as given
    Column("source", String(1024), nullable=False),  # where it came from (the file's name)
    Column("created_by", String(255), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime, nullable=True),
)

# Calls the candidate decided otherwise than the enforced policy: one row
# per call, pointing at its audit decision row. Arguments are not kept
# (the audit row has their digest).
shadow_differences = Table(
    "shadow_differences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shadow_id", Integer, ForeignKey("policy_shadows.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("audit_id", Integer, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("subject", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("action", String(32), nullable=True),
    Column("target", Text, nullable=False),
    # What was enforced: allow or deny, its grant (a stored id) and reason.
    Column("decision", String(8), nullable=False),
    Column("grant_id", Integer, nullable=True),
    Column("reason", Text, nullable=True),
    # What the candidate decided: its deciding grant as the file names it, and its reason.
    Column("shadow_grant", Text, nullable=True),
    Column("shadow_reason", Text, nullable=False),
)

# --- personal access tokens (migration 0016) -------------------------------
# Opaque tokens for clients that send a fixed `Authorization` header. Only
# the SHA-256 digest of the token is stored; its revocation is the ledger row
# `access_tokens.jti` (so revoking a user or client revokes these too).
personal_tokens = Table(
    "personal_tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("jti", String(255), nullable=False),
    Column("subject", String(255), nullable=False, index=True),
    Column("client_id", String(255), nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),  # None: never expires
    Column("last_used_at", UTCDateTime, nullable=True),
)
