"""`mcp-acl upstream add/list/show/remove`: references only, one-line errors that write nothing."""

from __future__ import annotations

import json

import pytest


def test_add_list_show_and_remove_an_http_and_a_command_upstream(cli, store_rows):
    before = store_rows(cli.url)["policy_revision"]
    cli.ok("upstream", "add", "tracker", "--url", "http://127.0.0.1:9/mcp", "--header", "Authorization=env:TRACKER_TOKEN", "--timeout", "5", "--no-connect")
    cli.ok("upstream", "add", "local", "--command", "python -m my_server --quiet", "--env", "API_KEY=file:/run/key", "--no-connect")
    assert store_rows(cli.url)["policy_revision"] != before
    listed = json.loads(cli.ok("upstream", "list", "--json"))
    assert [(u["name"], u["transport"], u["timeout"]) for u in listed] == [("local", "stdio", 30.0), ("tracker", "http", 5.0)]
    assert listed[0]["command"] == "python" and listed[0]["args"] == ["-m", "my_server", "--quiet"]
    shown = json.loads(cli.ok("upstream", "show", "tracker"))
    assert shown["headers"] == {"Authorization": "env:TRACKER_TOKEN"}
    table = cli.ok("upstream", "list")
    assert "tracker" in table and "python -m my_server --quiet" in table
    cli.ok("upstream", "remove", "tracker")
    assert [u["name"] for u in json.loads(cli.ok("upstream", "list", "--json"))] == ["local"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add", "files", "--url", "http://127.0.0.1:9/mcp"), "collides with the built-in tools files"),
        (("add", "tracker", "--url", "http://127.0.0.1:9/mcp", "--header", "Authorization=Bearer abc"), "must be a reference"),
        (("add", "tracker", "--command", "server", "--env", "TOKEN=abc"), "must be a reference"),
        (("add", "tracker", "--url", "http://127.0.0.1:9/mcp", "--command", "server"), "exactly one of --url"),
        (("add", "tracker"), "exactly one of --url"),
        (("add", "tracker", "--url", "not a url"), "http:// or https://"),
        (("add", "tracker", "--url", "http://127.0.0.1:9/mcp", "--timeout", "0"), "above 0"),
        (("add", "tracker", "--command", "'unclosed"), "cannot be read as a command line"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-client-id", "gw", "--oauth-client-secret", "hunter2"),
         "--oauth-client-secret must be a reference"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-client-id", "gw", "--oauth-client-secret", "vault:x"),
         "--oauth-client-secret must be a reference"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-client-id", "gw"), "needs both --oauth-client-id and"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-scope", "read"), "needs both --oauth-client-id and"),
        (("add", "vault", "--command", "server", "--oauth-client-id", "gw", "--oauth-client-secret", "env:S"),
         "--oauth-* options are for a --url upstream"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-client-id", "gw", "--oauth-client-secret", "env:S",
          "--oauth-token-url", "ftp://as/token"), "--oauth-token-url must be an http"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-client-id", "gw", "--oauth-client-secret", "env:S",
          "--oauth-token-exchange"), "--oauth-token-exchange needs --oauth-token-url"),
        (("add", "vault", "--url", "http://127.0.0.1:9/mcp", "--oauth-client-id", "gw", "--oauth-client-secret", "env:S",
          "--header", "Authorization=env:T"), "either an Authorization --header or --oauth-client-id"),
        (("add", "tracker", "--command", "server", "--sse"), "--sse goes with --url"),
        (("remove", "nobody"), "upstream 'nobody' does not exist"),
        (("show", "nobody"), "upstream 'nobody' does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, args, says):
    assert says in cli.rejects("upstream", *args)


def test_oauth_settings_are_shown_as_references(cli):
    cli.ok(
        "upstream", "add", "vault", "--url", "https://vault.example/mcp", "--oauth-client-id", "gateway",
        "--oauth-client-secret", "file:/run/secrets/vault", "--oauth-token-url", "https://id.example/token",
        "--oauth-scope", "vault.read vault.write", "--oauth-audience", "vault", "--oauth-token-exchange", "--no-connect",
    )
    assert json.loads(cli.ok("upstream", "show", "vault"))["oauth"] == {
        "client_id": "gateway", "client_secret": "file:/run/secrets/vault", "token_url": "https://id.example/token",
        "scope": "vault.read vault.write", "audience": "vault", "token_exchange": True,
    }
def test_an_sse_upstream_is_added_with_its_transport(cli):
    cli.ok("upstream", "add", "old", "--url", "http://127.0.0.1:9/sse", "--sse", "--no-connect")
    shown = json.loads(cli.ok("upstream", "show", "old"))
    assert (shown["transport"], shown["url"]) == ("sse", "http://127.0.0.1:9/sse")
    assert "sse" in cli.ok("upstream", "list")


def test_a_taken_name_is_refused(cli):
    cli.ok("upstream", "add", "tracker", "--url", "http://127.0.0.1:9/mcp", "--no-connect")
    assert "already exists" in cli.rejects("upstream", "add", "tracker", "--command", "server")
