"""The sign-in pages' form targets."""

from __future__ import annotations

import re
from html import escape

from mcp_acl.oauth.pages import redirect_target
from tests.gateway.harness import REPORTS_NOTE, connect
from tests.oauth.harness import AGENT_TOOLS, ALICE_TOOLS, BOB_TOOLS, Client, pkce_pair


def test_redirect_targets_for_the_consent_form():
    assert redirect_target("http://127.0.0.1:33418/cb") == "http://127.0.0.1:33418"
    assert redirect_target("https://vscode.dev/redirect") == "https://vscode.dev"
    assert redirect_target("cursor://anysphere.cursor-retrieval/cb") == "cursor:"
    assert redirect_target("https://a.example;script-src */cb") is None


# --- the pages as served ----------------------------------------------------

def _consent(oauth, client, user: str = "alice"):
    with oauth.browser() as browser:
        page = oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1]), user)
    assert page.status_code == 200, page.text[:300]
    return page


def _listed(page, kind: str) -> set[str]:
    found = re.search(rf"<dt>{kind}</dt><dd><ul>(.*?)</ul>", page.text)
    return set(re.findall(r"<code>(.*?)</code>", found.group(1))) if found else set()


def test_consent_names_the_client_by_its_name_and_shows_the_id_once_as_a_detail(oauth):
    client = oauth.register(client_name="Report Bot <b>")
    page = _consent(oauth, client)
    assert "<strong>Report Bot &lt;b&gt;</strong> asks to use mcp-acl as you." in page.text
    assert page.text.count(client.client_id) == 1
    assert f"Client id: <code>{client.client_id}</code>" in page.text


def test_a_self_registered_client_is_flagged_prominently_on_both_pages(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        sign_in = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
    consent = _consent(oauth, client)
    for page in (sign_in, consent):
        assert "<div class=warning role=alert><strong>Unverified app.</strong> This app registered itself" in page.text


def test_an_admin_registered_client_carries_no_warning(oauth):
    redirect = f"http://127.0.0.1:{oauth.live.port + 1}/callback"
    oauth.make_confidential("ollama-agent", (redirect,))
    page = _consent(oauth, Client("ollama-agent", redirect))
    assert "class=warning" not in page.text and "registered itself" not in page.text


async def test_consent_lists_what_the_users_grants_allow_exactly_as_the_token_will_list_it(oauth):
    client = oauth.register()
    alice = _consent(oauth, client, "alice")
    assert _listed(alice, "Tools") == ALICE_TOOLS
    # With each tool, its limits as the model sees them (the grant's note, else its condition).
    assert f"<code>files.read</code>: {escape(REPORTS_NOTE)}</li>" in alice.text
    orders = escape('only when args.table == "orders"')
    assert f"<code>sql.select</code>: {orders}</li>" in alice.text
    assert _listed(_consent(oauth, client, "bob"), "Tools") == BOB_TOOLS
    tokens = oauth.tokens_for(client, "bob")
    async with connect(oauth.resource, tokens["access_token"]) as mcp:
        assert {t.name for t in (await mcp.list_tools()).tools} == BOB_TOOLS


def test_consent_through_a_restricted_client_lists_only_what_both_allow(oauth):
    redirect = f"http://127.0.0.1:{oauth.live.port + 1}/callback"
    oauth.make_confidential("ollama-agent", (redirect,))
    page = _consent(oauth, Client("ollama-agent", redirect), "alice")
    assert _listed(page, "Tools") == ALICE_TOOLS & AGENT_TOOLS
    assert "and this app's own grants" in page.text


def test_an_error_with_no_way_back_to_the_app_says_what_to_do_next(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1], redirect_uri="https://evil.example/cb"))
    assert page.status_code == 400
    assert "<strong>What to do next:</strong> Go back to the app you came from and start the sign-in again." in page.text
