"""Client ID Metadata Documents: a client_id that is the URL of the client's
own metadata document, served here by a real HTTP server on loopback (plain
http is allowed only because the test world turns on both
`cimd_allow_private` and `cimd_allow_http`)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from mcp_acl.oauth.cimd import FetchPolicy, MetadataDocumentError, MetadataDocuments, _ttl, check_url
from mcp_acl.store import tables as t
from tests.gateway.harness import connect
from tests.oauth.harness import (
    ALICE_TOOLS, PASSWORDS, Client, form_request_id, pkce_pair, redirect_params, sdk_sign_in, start_world,
)

CALLBACK = "http://127.0.0.1:1/callback"
TIME_LIMIT = 1.0  # the test world's fetch limit, in seconds


class DocumentServer:
    """A small HTTP server: path -> (status, headers, body); "/slow" answers only when released."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.scheme = "https" if tls else "http"
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                if self.path == "/slow":
                    owner.release.wait(30)
                status, headers, body = owner.routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the fetcher gave up on us

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.httpd.server_port}{path}"

    def document(self, path: str, host: str = "127.0.0.1", **fields) -> str:
        """Serve a valid metadata document at `path` (fields override); return its URL."""
        url = self.url(path, host)
        body = {"client_id": url, "client_name": "Acme Notes", "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none", **fields}
        self.serve(path, json.dumps(body).encode())
        return url

    def serve(self, path: str, body: bytes, status: int = 200, **headers: str) -> None:
        self.routes[path] = (status, {k.replace("_", "-"): v for k, v in headers.items()}, body)

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cimd_world(sqlite_url, tmp_path) -> Iterator:
    world = start_world(sqlite_url, tmp_path / "home", cimd_allow_private=True, cimd_allow_http=True,
                        cimd_timeout=TIME_LIMIT)
    try:
        yield world
    finally:
        world.close()
        world.live.stop()
        world.engine.dispose()


def _client_rows(engine, client_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.clients).where(t.clients.c.client_id == client_id)).scalar()


def _pending_requests(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.oauth_authorization_requests)).scalar()


async def test_a_metadata_document_client_signs_alice_in_and_its_token_works_at_mcp(cimd_world, documents):
    oauth = cimd_world
    url = documents.document("/clients/notes.json")
    client = Client(url, CALLBACK)
    assert _client_rows(oauth.engine, url) == 0

    verifier, challenge = pkce_pair()
    with oauth.browser() as browser:
        consent = oauth.sign_in(browser, oauth.authorize_params(client, challenge))
        assert consent.status_code == 200, consent.text[:300]
        # The name from the document, vouched for by the URL's origin (not by anything the document says).
        assert "Acme Notes" in consent.text
        assert f"Verified by its origin: <strong>http://127.0.0.1:{documents.httpd.server_port}</strong>" in consent.text
        assert "Unverified app" not in consent.text
        answer = redirect_params(browser.post("/authorize/consent", data={"request": form_request_id(consent), "decision": "allow"}))
    response = oauth.exchange(client, answer["code"], verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()

    async with connect(oauth.resource, tokens["access_token"]) as mcp:
        assert {tool.name for tool in (await mcp.list_tools()).tools} == ALICE_TOOLS
    refreshed = oauth.refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    # Now a policy principal like any client; the document was fetched once and then cached.
    with oauth.engine.connect() as conn:
        row = conn.execute(select(t.clients).where(t.clients.c.client_id == url)).one()
    assert (row.name, row.registered_via, row.token_endpoint_auth_method) == ("Acme Notes", "cimd", None)
    assert documents.hits["/clients/notes.json"] == 1


def test_metadata_is_advertised(cimd_world):
    document = cimd_world.http.get("/.well-known/oauth-authorization-server").json()
    assert document["client_id_metadata_document_supported"] is True


BAD = {
    "client_id mismatch": ({"client_id": "http://127.0.0.1:1/other.json"}, "not exactly its URL"),
    "confidential": ({"token_endpoint_auth_method": "client_secret_basic"}, "token_endpoint_auth_method must be"),
    "no redirect URIs": ({"redirect_uris": []}, "redirect_uris"),
    "client_credentials": ({"grant_types": ["client_credentials"]}, "grant_types"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_document_is_refused_at_authorize_and_nothing_is_stored(cimd_world, documents, case):
    fields, message = BAD[case]
    url = documents.document("/bad.json", **fields)
    _refused(cimd_world, url, message)
    token = cimd_world.exchange(Client(url, CALLBACK), "any-code", "any-verifier")
    assert token.status_code in (400, 401) and token.json()["error"] == "invalid_client", token.text
    assert _client_rows(cimd_world.engine, url) == 0


def _refused(oauth, url: str, message: str, redirect_uri: str = CALLBACK) -> None:
    _, challenge = pkce_pair()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(Client(url, redirect_uri), challenge))
    assert page.status_code in (400, 401), page.text[:300]
    assert "location" not in page.headers  # never sent back to an unchecked redirect URI
    assert message in page.text, page.text[:500]
    assert _client_rows(oauth.engine, url) == 0
    assert _pending_requests(oauth.engine) == 0


def test_a_redirect_uri_the_document_does_not_list_is_refused(cimd_world, documents):
    url = documents.document("/notes.json")
    _, challenge = pkce_pair()
    for other in ("http://127.0.0.1:2/callback", "http://evil.example/callback"):  # not even another loopback port
        with cimd_world.browser() as browser:
            page = browser.get("/authorize", params=cimd_world.authorize_params(Client(url, other), challenge))
        assert page.status_code == 400 and "location" not in page.headers
    assert _pending_requests(cimd_world.engine) == 0


def test_oversized_slow_redirected_and_non_json_documents_are_refused(cimd_world, documents):
    big = documents.url("/big.json")
    padding = "x" * 6000
    documents.serve("/big.json", json.dumps({"client_id": big, "redirect_uris": [CALLBACK], "pad": padding}).encode())
    _refused(cimd_world, big, "larger than 5120 bytes")

    documents.serve("/slow", b"{}")
    _refused(cimd_world, documents.url("/slow"), f"took longer than {TIME_LIMIT:g} s")

    documents.document("/elsewhere.json")
    documents.serve("/moved.json", b"", 302, Location=documents.url("/elsewhere.json"))
    _refused(cimd_world, documents.url("/moved.json"), "HTTP 302")
    assert "/elsewhere.json" not in documents.hits  # the redirect was not followed

    html = documents.url("/page.json")
    documents.serve("/page.json", json.dumps({"client_id": html, "redirect_uris": [CALLBACK]}).encode(), Content_Type="text/html")
    _refused(cimd_world, html, "not application/json")


def test_a_private_address_is_refused_unless_allowed(oauth, documents):
    # The default world: no private addresses, no plain http.
    document = documents.document("/notes.json")
    _refused(oauth, document, "must use https")
    loopback = f"https://127.0.0.1:{documents.httpd.server_port}/notes.json"
    _refused(oauth, loopback, "private or reserved address")
    _refused(oauth, "https://localhost/notes.json", "private or reserved address")
    assert documents.hits == {}  # refused before any connection


def test_plain_http_needs_the_private_setting_too(documents):
    url = documents.document("/notes.json")
    with pytest.raises(MetadataDocumentError, match="must use https"):
        MetadataDocuments(FetchPolicy(allow_http=True)).get(url)
    assert MetadataDocuments(FetchPolicy(allow_http=True, allow_private=True)).get(url).client_name == "Acme Notes"


@pytest.mark.parametrize("url", [
    "https://example.com", "https://example.com/", "https://user:pw@example.com/c.json",
    "https://example.com/c.json#frag", "https://example.com/a/../c.json", "https://example.com/./c.json",
    "ftp://example.com/c.json", "https://example.com/" + "a" * 300,
])
def test_client_id_urls_that_cannot_name_a_document(url):
    with pytest.raises(MetadataDocumentError):
        check_url(url, FetchPolicy())


def test_cache_lifetime_follows_max_age_within_bounds():
    policy = FetchPolicy()
    assert _ttl(None, policy) == 300
    assert _ttl("public, max-age=60", policy) == 60
    assert _ttl("max-age=86400", policy) == 3600
    assert _ttl("no-store", policy) == 0


def test_a_document_is_fetched_again_once_its_max_age_is_over(documents):
    url = documents.document("/notes.json")
    documents.routes["/notes.json"][1]["Cache-Control"] = "max-age=60"
    now = [0.0]
    cache = MetadataDocuments(FetchPolicy(allow_http=True, allow_private=True), clock=lambda: now[0])
    cache.get(url)
    now[0] = 59.0
    cache.get(url)
    assert documents.hits["/notes.json"] == 1
    now[0] = 61.0
    cache.get(url)
    assert documents.hits["/notes.json"] == 2


def _self_signed(tmp_path, name: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with a certificate for `name` (and 127.0.0.1); the certificate's file, as a CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


def test_https_is_checked_against_the_host_name_while_connecting_to_the_checked_address(tmp_path, monkeypatch):
    context, ca_file = _self_signed(tmp_path, "localhost")
    server = DocumentServer(tls=context)
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    try:
        url = server.document("/notes.json", host="localhost")
        fetched = MetadataDocuments(FetchPolicy(allow_private=True, ca_file=ca_file)).get(url)
        assert (fetched.client_name, fetched.origin) == ("Acme Notes", f"https://localhost:{server.httpd.server_port}")
        # One lookup of the name (the one checked); the connection went to the address it gave.
        assert lookups.count("localhost") == 1
        # Another CA: the certificate is not trusted, whatever address was checked.
        _, other_ca = _self_signed(tmp_path, "other.test")
        with pytest.raises(MetadataDocumentError, match="cannot be fetched"):
            MetadataDocuments(FetchPolicy(allow_private=True, ca_file=other_ca)).get(url)
    finally:
        server.stop()


async def test_the_sdk_client_signs_in_with_its_metadata_url_instead_of_registering(sqlite_url, tmp_path):
    context, ca_file = _self_signed(tmp_path, "localhost")
    documents = DocumentServer(tls=context)
    oauth = start_world(sqlite_url, tmp_path / "home", cimd_allow_private=True, cimd_ca_file=ca_file)
    try:
        url = documents.document("/sdk-client.json", host="localhost")
        names, storage = await sdk_sign_in(oauth.resource, "alice", PASSWORDS["alice"], client_metadata_url=url)
        assert names == ALICE_TOOLS
        assert storage.client_info is not None and storage.client_info.client_id == url
        assert _client_rows(oauth.engine, url) == 1
        with oauth.engine.connect() as conn:  # it never used /register
            assert conn.execute(select(func.count()).select_from(t.clients).where(t.clients.c.registered_via == "dynamic")).scalar() == 0
    finally:
        oauth.close()
        oauth.live.stop()
        oauth.engine.dispose()
        documents.stop()


def test_a_document_gets_only_the_grant_types_it_names():
    from mcp_acl.oauth.cimd import parse_document

    url = "https://app.example.com/client.json"
    base = {"client_id": url, "client_name": "App", "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"}
    only_code = parse_document(url, json.dumps(base | {"grant_types": ["authorization_code"]}).encode())
    assert only_code.grant_types == ("authorization_code",)  # no refresh tokens it never asked for
    both = parse_document(url, json.dumps(base | {"grant_types": ["authorization_code", "refresh_token"]}).encode())
    assert both.grant_types == ("authorization_code", "refresh_token")
