"""The administrator's switches for clients that bring themselves: metadata
documents (MCP_ACL_CIMD, MCP_ACL_CIMD_ALLOWED_HOSTS) and dynamic registration
(MCP_ACL_REGISTRATION), on the served app over real HTTP on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mcp_acl.cli import app
from mcp_acl.host_patterns import host_allowed, parse_host_patterns
from mcp_acl.store import tables as t
from tests.oauth.harness import Client, pkce_pair, restart_world, start_world
from tests.oauth.test_cimd import CALLBACK
from tests.oauth.test_token_exchange import _exchange

OFF_MESSAGE = "does not accept clients identified by a metadata document URL"
LOOPBACK_DOCUMENTS = {"cimd_allow_private": True, "cimd_allow_http": True, "cimd_timeout": 1.0}


@pytest.fixture
def served(sqlite_url, tmp_path):
    """start(**settings): the served world (documents reachable on loopback), stopped after the test."""
    worlds = []

    def start(**settings):
        worlds.append(start_world(sqlite_url, tmp_path / "home", **LOOPBACK_DOCUMENTS, **settings))
        return worlds[-1]

    def restart(world, **settings):
        worlds.append(restart_world(world, **settings))
        return worlds[-1]

    start.restart = restart
    yield start
    for world in worlds:
        world.close()
    if worlds:
        worlds[-1].live.stop()
        worlds[-1].engine.dispose()


def _client_count(engine, **where) -> int:
    query = select(func.count()).select_from(t.clients)
    for column, value in where.items():
        query = query.where(t.clients.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def _pending_requests(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t.oauth_authorization_requests)).scalar()


def _authorize_page(oauth, client_id: str):
    _, challenge = pkce_pair()
    with oauth.browser() as browser:
        return browser.get("/authorize", params=oauth.authorize_params(Client(client_id, CALLBACK), challenge))


def _assert_refused_page(page, message: str) -> None:
    assert page.status_code in (400, 401), page.text[:300]
    assert "location" not in page.headers  # never sent to a redirect URI nobody checked
    assert "Sign-in failed" in page.text and message in page.text, page.text[:500]


def _mcp_status(oauth, access_token: str) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json, text/event-stream"}
    return oauth.http.post("/mcp", json=body, headers=headers).status_code


def test_with_cimd_off_an_https_client_id_is_refused_on_the_error_page_and_nothing_is_fetched_or_stored(served, documents):
    oauth = served(cimd=False)
    url = documents.document("/clients/notes.json")

    _assert_refused_page(_authorize_page(oauth, url), OFF_MESSAGE)
    token = oauth.exchange(Client(url, CALLBACK), "any-code", "any-verifier")
    assert token.status_code in (400, 401) and token.json()["error"] == "invalid_client", token.text
    assert OFF_MESSAGE in token.json()["error_description"]
    assert documents.hits == {}
    assert _client_count(oauth.engine, client_id=url) == 0
    assert _pending_requests(oauth.engine) == 0

    metadata = oauth.http.get("/.well-known/oauth-authorization-server").json()
    assert "client_id_metadata_document_supported" not in metadata
    assert metadata["registration_endpoint"].endswith("/register")  # the other switch is untouched


def test_an_allowed_hosts_list_admits_its_hosts_only(served, documents):
    oauth = served(cimd_allowed_hosts=("*.example.com", "127.0.0.1"))
    listed = documents.document("/notes.json")
    # The same server by another name: not on the list, so not even fetched.
    unlisted = documents.document("/other.json", host="localhost")

    _assert_refused_page(_authorize_page(oauth, unlisted), "does not accept client metadata documents from localhost")
    assert "/other.json" not in documents.hits
    assert _client_count(oauth.engine, client_id=unlisted) == 0

    tokens = oauth.tokens_for(Client(listed, CALLBACK))
    assert _mcp_status(oauth, tokens["access_token"]) == 200
    assert _client_count(oauth.engine, client_id=listed, registered_via="cimd") == 1
    metadata = oauth.http.get("/.well-known/oauth-authorization-server").json()
    assert metadata["client_id_metadata_document_supported"] is True  # supported, from those hosts


@pytest.mark.parametrize("change, message", [
    ({"cimd": False}, OFF_MESSAGE),
    ({"cimd_allowed_hosts": ("claude.ai",)}, "does not accept client metadata documents from 127.0.0.1"),
])
def test_a_document_client_from_before_is_refused_once_documents_are_turned_off_or_its_host_unlisted(
    served, documents, change, message,
):
    before = served()
    url = documents.document("/notes.json")
    client = Client(url, CALLBACK)
    tokens = before.tokens_for(client)
    assert _client_count(before.engine, client_id=url, registered_via="cimd") == 1
    fetched, pending = documents.hits["/notes.json"], _pending_requests(before.engine)

    after = served.restart(before, **change)
    # Every endpoint that takes its client_id refuses it the same way: refresh, token exchange, revocation.
    refreshed = after.refresh(client, tokens["refresh_token"])
    exchanged = _exchange(after, client, tokens["access_token"])
    revoking = after.http.post("/revoke", data={"token": tokens["refresh_token"], "client_id": url})
    for answer in (refreshed, exchanged, revoking):
        assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client", answer.text
        assert message in answer.json()["error_description"]
    _assert_refused_page(_authorize_page(after, url), message)
    assert documents.hits["/notes.json"] == fetched  # refused before any fetch
    assert _pending_requests(after.engine) == pending
    assert _client_count(after.engine, client_id=url) == 1  # its row (a policy principal) is left alone

    # An access token minted before lives out its lifetime, unless revoked (docs/oauth.md says so).
    assert _mcp_status(after, tokens["access_token"]) == 200
    revoked = CliRunner().invoke(app, ["token", "revoke", "--client", url, "--database", after.settings.database_url])
    assert revoked.exit_code == 0, revoked.output
    assert _mcp_status(after, tokens["access_token"]) == 401


def test_with_registration_off_register_is_refused_and_clients_registered_before_keep_working(served, documents):
    before = served()
    registered = before.register()

    after = served.restart(before, registration=False)
    answer = after.http.post("/register", json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "access_denied"
    assert "registration is turned off" in answer.json()["error_description"]
    assert answer.headers["access-control-allow-origin"] == "*"  # a browser client can read why
    assert _client_count(after.engine, registered_via="dynamic") == 1  # only the one from before

    metadata = after.http.get("/.well-known/oauth-authorization-server").json()
    assert "registration_endpoint" not in metadata
    assert metadata["client_id_metadata_document_supported"] is True

    tokens = after.tokens_for(registered)
    assert _mcp_status(after, tokens["access_token"]) == 200
    assert after.refresh(registered, tokens["refresh_token"]).status_code == 200
    # Metadata documents still work: the switches are independent.
    assert _mcp_status(after, after.tokens_for(Client(documents.document("/notes.json"), CALLBACK))["access_token"]) == 200


@pytest.mark.parametrize("name, raw, line", [
    ("MCP_ACL_CIMD", "false", "error: MCP_ACL_CIMD must be on or off, not 'false'"),
    ("MCP_ACL_REGISTRATION", "of", "error: MCP_ACL_REGISTRATION must be on or off, not 'of'"),
    ("MCP_ACL_CIMD_ALLOWED_HOSTS", "https://claude.ai",
     "error: MCP_ACL_CIMD_ALLOWED_HOSTS: 'https://claude.ai' is not a host name or *.domain (e.g. claude.ai,*.example.com)"),
    ("MCP_ACL_CIMD_ALLOWED_HOSTS", "claude.ai,*.com",
     "error: MCP_ACL_CIMD_ALLOWED_HOSTS: '*.com' is too broad: name a domain of two labels or more, e.g. *.example.com"),
])
def test_a_bad_value_stops_serve_with_one_line_and_exit_2(subprocess_env, tmp_path, name, raw, line):
    env = {**subprocess_env, name: raw}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [line]
    assert not (tmp_path / "home").exists()  # stopped before opening any database


def test_on_and_off_are_the_only_words(monkeypatch, sqlite_url):
    from mcp_acl.config import Settings, SettingsError

    for raw, expected in (("on", True), ("OFF", False), (" off ", False), ("", True)):
        monkeypatch.setenv("MCP_ACL_CIMD", raw)
        monkeypatch.setenv("MCP_ACL_REGISTRATION", raw)
        settings = Settings.from_env(sqlite_url)
        assert (settings.cimd, settings.registration) == (expected, expected)
    monkeypatch.setenv("MCP_ACL_CIMD", "0")
    with pytest.raises(SettingsError, match="MCP_ACL_CIMD must be on or off"):
        Settings.from_env(sqlite_url)


def test_host_patterns_are_exact_names_or_a_domain_below_which_any_name_fits():
    patterns = parse_host_patterns(" Claude.ai , *.example.com,127.0.0.1", "X")
    assert patterns == ("claude.ai", "*.example.com", "127.0.0.1")
    for host in ("claude.ai", "CLAUDE.AI", "a.example.com", "a.b.example.com", "127.0.0.1"):
        assert host_allowed(host, patterns), host
    # A trailing dot, an international name not in punycode, an IPv6 address: refused, never matched loosely.
    for host in ("example.com", "evilexample.com", "claude.ai.evil.com", "sub.claude.ai", ".example.com",
                 "127.0.0.2", "", None, "claude.ai.", "a.example.com.", "cl\u0430ude.ai", "a..example.com", "::1"):
        assert not host_allowed(host, patterns), host
    for bad in ("", "a,,b", "*", "*example.com", "a.*.com", "claude.ai:443", "claude.ai/x", "https://claude.ai",
                "*.com", "-bad.com", "claude.ai.", "*.0.0.1", "*.168.1.1"):
        with pytest.raises(ValueError, match="^X: "):
            parse_host_patterns(bad, "X")
    # Even if such a pattern were made by hand: a `*.` domain never admits an address.
    assert not host_allowed("127.0.0.1", ("*.0.0.1",))


def test_the_allowed_hosts_are_checked_on_the_url_host_only():
    from mcp_acl.oauth.cimd import MetadataDocumentError
    from mcp_acl.oauth.cimd_admission import DocumentAdmission

    admission = DocumentAdmission(allowed_hosts=("claude.ai",))
    for url in ("https://claude.ai/client.json", "https://CLAUDE.ai/client.json", "https://claude.ai:8443/client.json"):
        admission.check(url)
    # A listed name as user info, in the path or the query, or as a prefix of the host: the host is another.
    for url in ("https://claude.ai@evil.example/client.json", "https://evil.example/claude.ai",
                "https://evil.example/x?h=claude.ai", "https://claude.ai.evil.example/client.json",
                "https://claude.ai./client.json", "https:///client.json"):
        with pytest.raises(MetadataDocumentError, match="does not accept client metadata documents"):
            admission.check(url)
    with pytest.raises(MetadataDocumentError, match="does not accept clients identified by a metadata document URL"):
        DocumentAdmission(enabled=False, allowed_hosts=("claude.ai",)).check("https://claude.ai/client.json")
