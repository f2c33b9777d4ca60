"""OAuth clients of the embedded issuer: what is stored about them, and how
Authlib asks about them (its `ClientMixin`).

A row of `clients` is always a policy principal (`client:<id>`). It becomes
an OAuth client when it has a `token_endpoint_auth_method`: set by
`mcp-acl client add … --redirect-uri/--confidential` or by dynamic
registration (RFC 7591). Public clients (`none`) have no secret and must use
PKCE; confidential ones authenticate with a secret that is stored only as
its SHA-256 and shown once.

A client whose id is an https URL (a Client ID Metadata Document, cimd.py)
needs no registration: its metadata is fetched from that URL each time it is
not cached, and a `clients` row (registered_via "cimd", no auth method) is
added the first time it resolves, so that it is a policy principal like any
other and its codes and tokens have a row to refer to.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from mcp_acl.oauth import redirects
from mcp_acl.oauth.cimd import ClientMetadata, MetadataDocumentError, MetadataDocuments, looks_like_metadata_url
from mcp_acl.oauth.cimd_admission import DocumentAdmission
from mcp_acl.oauth._digest import digest, matches, new_token
from mcp_acl.store import tables as t
from mcp_acl.store.admin import unknown_name

PUBLIC = "none"
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = (PUBLIC, *SECRET_METHODS)
CODE_GRANTS = ("authorization_code", "refresh_token")
SERVICE_GRANT = "client_credentials"
METADATA_DOCUMENT = "cimd"  # registered_via of a client known by its metadata document URL


class ClientError(ValueError):
    """A client registration that cannot be made as asked (nothing was written)."""


@dataclass(frozen=True)
class OAuthClient(ClientMixin):
    """A registered OAuth client, as Authlib's grants and endpoints see it."""

    client_id: str
    name: str | None
    restricted: bool
    auth_method: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    registered_via: str | None
    origin: str | None = None  # for a metadata document client: the origin of its client_id URL

    @property
    def is_public(self) -> bool:
        """A client without a secret (it proves itself with PKCE alone)."""
        return self.auth_method == PUBLIC

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous default: with several URIs the request must name one.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # RFC 6749 §3.3 lets the server grant less than asked: unknown scopes
        # are dropped, and a request left with nothing is refused (None).
        allowed = scope_to_list(self.scope)
        if not scope:
            return list_to_scope(allowed)
        granted = [s for s in dict.fromkeys(scope_to_list(scope)) if s in allowed]
        return list_to_scope(granted) if granted else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if self.registered_via == METADATA_DOCUMENT:
            # Exactly as the document lists it: no loopback port leeway for a URL anyone can publish.
            return redirect_uri in self.redirect_uris
        return redirects.matches(redirect_uri, self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Basic and post carry the same secret; a public client only ever "none".
        if self.is_public:
            return method == PUBLIC
        return method in SECRET_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True)
class Registration:
    """What to store for a client that signs in through the embedded issuer."""

    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str | None = None

    @classmethod
    def for_admin(cls, redirect_uris: list[str] | tuple[str, ...], confidential: bool) -> "Registration | None":
        """The registration `mcp-acl client add` makes; None for a policy-only client."""
        if not redirect_uris and not confidential:
            return None
        try:
            uris = tuple(redirects.check_registrable_list(list(redirect_uris))) if redirect_uris else ()
        except redirects.RedirectUriError as exc:
            raise ClientError(str(exc)) from exc
        grants = (CODE_GRANTS if uris else ()) + ((SERVICE_GRANT,) if confidential else ())
        return cls(SECRET_METHODS[0] if confidential else PUBLIC, uris, grants)

    def validate(self) -> None:
        """Raise ClientError when the parts do not fit together."""
        if self.auth_method not in AUTH_METHODS:
            raise ClientError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
        if not self.grant_types:
            raise ClientError("a client needs at least one grant type")
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            raise ClientError("the authorization_code grant needs at least one redirect URI")
        if SERVICE_GRANT in self.grant_types and self.auth_method == PUBLIC:
            raise ClientError("client_credentials is only for confidential clients (with a secret)")
        try:
            for uri in self.redirect_uris:
                redirects.check_registrable(uri)
        except redirects.RedirectUriError as exc:
            raise ClientError(str(exc)) from exc


def _row_values(reg: Registration, secret: str | None) -> dict:
    return {
        "token_endpoint_auth_method": reg.auth_method,
        "client_secret_hash": digest(secret) if secret else None,
        "redirect_uris": json.dumps(list(reg.redirect_uris)),
        "grant_types": json.dumps(list(reg.grant_types)),
        "scope": reg.scope,
    }


class ClientRegistry:
    """Reads and writes OAuth client registrations."""

    def __init__(
        self, engine: Engine, default_scope: str = "mcp", documents: MetadataDocuments | None = None,
        admission: DocumentAdmission = DocumentAdmission(),
    ) -> None:
        self.engine = engine
        self.default_scope = default_scope
        self.documents = documents  # None: client_id URLs are not looked up
        self.admission = admission  # whether (and from where) they may be, checked before any fetch

    def get(self, client_id: str) -> OAuthClient | None:
        """The OAuth client `client_id`, or None if it does not exist or cannot sign in."""
        try:
            return self.resolve(client_id)
        except MetadataDocumentError:
            return None

    def resolve(self, client_id: str) -> OAuthClient | None:
        """As `get`, but a client_id URL whose document is unusable raises MetadataDocumentError (saying why)."""
        if not isinstance(client_id, str) or not client_id:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(t.clients).where(t.clients.c.client_id == client_id)).first()
        if (row is None or row.token_endpoint_auth_method is None) and self.documents is not None \
                and looks_like_metadata_url(client_id):
            # Registered clients come first: an admin-made OAuth client keeps its stored metadata.
            self.admission.check(client_id)
            return self._from_document(self.documents.get(client_id), row)
        if row is None or row.token_endpoint_auth_method not in AUTH_METHODS:
            return None
        return OAuthClient(
            client_id=row.client_id,
            name=row.name,
            restricted=bool(row.restricted),
            auth_method=row.token_endpoint_auth_method,
            secret_hash=row.client_secret_hash,
            redirect_uris=tuple(json.loads(row.redirect_uris or "[]")),
            grant_types=tuple(json.loads(row.grant_types or "[]")),
            scope=row.scope or self.default_scope,
            registered_via=row.registered_via,
        )

    def _from_document(self, metadata: ClientMetadata, row) -> OAuthClient:
        if row is None:
            # No policy revision bump, as for dynamic registration: a new
            # unrestricted client with no grants changes no decision.
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(t.clients).values(
                        client_id=metadata.client_id, name=metadata.client_name, restricted=False,
                        created_at=datetime.now(timezone.utc), registered_via=METADATA_DOCUMENT,
                    ))
            except IntegrityError:
                pass  # another request added it first
        return OAuthClient(
            client_id=metadata.client_id,
            name=metadata.client_name,
            restricted=bool(row.restricted) if row is not None else False,
            auth_method=PUBLIC,
            secret_hash=None,
            redirect_uris=metadata.redirect_uris,
            grant_types=metadata.grant_types,
            scope=self.default_scope,
            registered_via=METADATA_DOCUMENT,
            origin=metadata.origin,
        )

    def attach(self, conn: Connection, client_id: str, reg: Registration, via: str = "admin") -> str | None:
        """Make the existing client `client_id` an OAuth client; return its new secret, if any."""
        reg.validate()
        secret = None if reg.auth_method == PUBLIC else new_token()
        done = conn.execute(
            update(t.clients).where(t.clients.c.client_id == client_id).values(registered_via=via, **_row_values(reg, secret))
        ).rowcount
        if not done:
            raise ClientError(f"client {client_id!r} does not exist")
        return secret

    def new_secret(self, client_id: str) -> str:
        """Replace the secret of a confidential client; return the new one (shown once)."""
        secret = new_token()
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.clients)
                .where(t.clients.c.client_id == client_id, t.clients.c.token_endpoint_auth_method.in_(SECRET_METHODS))
                .values(client_secret_hash=digest(secret))
            ).rowcount
            known = conn.execute(select(t.clients.c.client_id).where(t.clients.c.client_id == client_id)).first()
        if not known:
            raise ClientError(unknown_name("client", client_id))
        if not done:
            raise ClientError(f"client {client_id!r} is not a confidential OAuth client")
        return secret

    def register_dynamic(self, name: str | None, reg: Registration) -> tuple[OAuthClient, str | None]:
        """Store a client that registered itself (RFC 7591); return it and its secret."""
        reg.validate()
        client_id = "mcp-" + secrets.token_urlsafe(16)
        secret = None if reg.auth_method == PUBLIC else new_token()
        # No policy revision bump: a new unrestricted client with no grants
        # changes no decision (its users' own grants apply, as for any client).
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.clients).values(
                    client_id=client_id, name=name, restricted=False,
                    created_at=datetime.now(timezone.utc), registered_via="dynamic",
                    **_row_values(reg, secret),
                )
            )
        client = self.get(client_id)
        if client is None:
            raise ClientError("the registration was not stored")
        return client, secret
