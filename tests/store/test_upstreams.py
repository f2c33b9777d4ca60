"""Upstreams as stored rows: checked before writing, revision bumped, exported as references only."""

from __future__ import annotations

import pytest

from mcp_acl.store import AdminError, PolicyAdmin
from mcp_acl.store._yaml_fields import FileError
from mcp_acl.store.portable import dump_document, import_document, parse_document, read_document
from mcp_acl.store.upstreams import Upstream, add_upstream, get_upstream, list_upstreams, remove_upstream

GITHUB = Upstream("github", "http", url="http://127.0.0.1:9/mcp", headers={"Authorization": "env:GITHUB_TOKEN"}, timeout_seconds=5)
OLD = Upstream("old", "sse", url="http://127.0.0.1:9/sse")
LOCAL = Upstream("local", "stdio", command="python", args=("server.py", "--quiet"), env={"API_KEY": "file:/run/key"})


def test_adding_and_removing_an_upstream_bumps_the_revision_and_reads_back(engine):
    admin = PolicyAdmin(engine, actor="tester")
    before = admin.revision()
    add_upstream(admin, GITHUB)
    add_upstream(admin, LOCAL)
    assert admin.revision() == before + 2
    with engine.connect() as conn:
        assert [u.name for u in list_upstreams(conn)] == ["github", "local"]
        got = get_upstream(conn, "local")
    assert (got.command, got.args, dict(got.env), got.created_by) == ("python", ("server.py", "--quiet"), {"API_KEY": "file:/run/key"}, "tester")
    remove_upstream(admin, "github")
    assert admin.revision() == before + 3
    with pytest.raises(AdminError, match="does not exist"):
        remove_upstream(admin, "github")


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        (Upstream("files", "http", url="http://x/mcp"), "collides with the built-in tools files"),
        (Upstream("sql", "stdio", command="x"), "collides"),
        (Upstream("Git Hub", "http", url="http://x/mcp"), "must be lower-case"),
        (Upstream("gh", "http", url="http://x/mcp", headers={"Authorization": "Bearer abc"}), "must be a reference"),
        (Upstream("gh", "stdio", command="x", env={"TOKEN": "abc"}), "must be a reference"),
        (Upstream("gh", "", url=None), "one of --url"),
        (Upstream("gh", "http", url="ftp://x"), "http:// or https://"),
        (Upstream("gh", "http", url="http://x/mcp", timeout_seconds=0), "above 0"),
    ],
)
def test_bad_upstreams_are_refused_and_nothing_is_written(engine, upstream, message):
    admin = PolicyAdmin(engine)
    before = admin.revision()
    with pytest.raises(AdminError, match=message):
        add_upstream(admin, upstream)
    assert admin.revision() == before
    with engine.connect() as conn:
        assert list_upstreams(conn) == []


def test_an_upstream_name_is_taken_once(engine):
    admin = PolicyAdmin(engine)
    add_upstream(admin, GITHUB)
    with pytest.raises(AdminError, match="already exists"):
        add_upstream(admin, GITHUB)


def test_export_carries_references_and_import_restores_them(engine, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "s3cret-value")
    add_upstream(PolicyAdmin(engine), GITHUB)
    add_upstream(PolicyAdmin(engine), LOCAL)
    add_upstream(PolicyAdmin(engine), OLD)
    text = dump_document(read_document(engine)[0])
    assert "env:GITHUB_TOKEN" in text and "s3cret-value" not in text
    # Only the legacy SSE transport is written out; the others follow from url or command, as before.
    assert text.count("transport:") == 1 and "transport: sse" in text
    doc = parse_document(text)
    assert doc.summary().endswith("3 upstreams")
    for name in ("github", "local", "old"):
        remove_upstream(PolicyAdmin(engine), name)
    import_document(PolicyAdmin(engine), doc)
    with engine.connect() as conn:
        assert [(u.name, u.where(), dict(u.headers)) for u in list_upstreams(conn)] == [
            ("github", "http://127.0.0.1:9/mcp", {"Authorization": "env:GITHUB_TOKEN"}),
            ("local", "python server.py --quiet", {}),
            ("old", "http://127.0.0.1:9/sse", {}),
        ]
        assert [u.transport for u in list_upstreams(conn)] == ["http", "stdio", "sse"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: gh, command: [server], transport: sse}", r"upstreams\[0\]\.transport: expected stdio for an entry with a command"),
        ("{name: gh, url: 'http://x/sse', transport: websocket}", r"upstreams\[0\]\.transport: expected http or sse"),
        ("{name: gh, url: 'http://x/sse', transport: stdio}", r"upstreams\[0\]\.transport: expected http or sse"),
    ],
)
def test_a_policy_file_with_a_transport_that_does_not_fit_is_refused(entry, message):
    with pytest.raises(FileError, match=message):
        parse_document(f"upstreams:\n  - {entry}\n")


def test_a_policy_file_with_a_literal_header_value_is_refused():
    with pytest.raises(FileError, match=r"upstreams\[0\]: .*must be a reference"):
        parse_document("upstreams:\n  - {name: gh, url: 'http://x/mcp', headers: {Authorization: 'Bearer abc'}}\n")


def test_oauth_settings_travel_in_export_and_import_as_references(engine, monkeypatch):
    from mcp_acl.store.upstreams import UpstreamOAuth

    monkeypatch.setenv("VAULT_SECRET", "s3cret-value")
    oauth = UpstreamOAuth(client_id="gateway", client_secret="env:VAULT_SECRET", token_url="https://id.example/token",
                          resource="https://vault.example/mcp", token_exchange=True)
    add_upstream(PolicyAdmin(engine), Upstream(name="vault", transport="http", url="https://vault.example/mcp", oauth=oauth))
    text = dump_document(read_document(engine)[0])
    assert "env:VAULT_SECRET" in text and "s3cret-value" not in text
    remove_upstream(PolicyAdmin(engine), "vault")
    import_document(PolicyAdmin(engine), parse_document(text))
    with engine.connect() as conn:
        assert [u.oauth for u in list_upstreams(conn)] == [oauth]


def test_a_policy_file_with_a_literal_client_secret_is_refused():
    with pytest.raises(FileError, match=r"upstreams\[0\]: --oauth-client-secret must be a reference"):
        parse_document("upstreams:\n  - {name: gh, url: 'http://x/mcp', oauth: {client_id: gw, client_secret: hunter2}}\n")
    with pytest.raises(FileError, match=r"upstreams\[0\].oauth: unknown key 'secret'"):
        parse_document("upstreams:\n  - {name: gh, url: 'http://x/mcp', oauth: {client_id: gw, client_secret: env:S, secret: x}}\n")
