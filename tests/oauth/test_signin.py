"""The browser sign-in: forms, passwords, consent, CSRF binding, single use, page security."""

from __future__ import annotations

import re

import httpx2
from starlette.applications import Starlette

from mcp_acl.auth.keys import SigningKeys
from mcp_acl.config import Settings
from mcp_acl.oauth import oauth_routes
from mcp_acl.store import PolicyAdmin, make_engine, upgrade
from tests.oauth.harness import PASSWORDS, form_request_id, pkce_pair, redirect_params


def _without_request_id(page: httpx2.Response) -> str:
    return re.sub(r'name=request value="[^"]+"', "", page.text)


def test_sign_in_page_forbids_framing_and_caching(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def test_browser_cookie_is_httponly_and_samesite_lax_without_secure_on_http(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie


async def test_browser_cookie_is_secure_when_the_issuer_is_https(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    settings = Settings(database_url=sqlite_url, resource_url="https://acl.example.com/mcp")
    app = Starlette(routes=oauth_routes(settings, engine, SigningKeys(engine)))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app), base_url="https://acl.example.com") as http:
        registered = (await http.post("/register", json={"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"})).json()
        page = await http.get("/authorize", params={
            "response_type": "code", "client_id": registered["client_id"], "redirect_uri": "https://app.example.com/cb",
            "code_challenge": pkce_pair()[1], "code_challenge_method": "S256",
        })
    engine.dispose()
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-mcp_acl_browser=") and "Secure" in cookie and "HttpOnly" in cookie


def test_consent_shows_the_client_name_and_its_redirect_host(oauth):
    client = oauth.register(client_name="Report Bot <b>")
    verifier, challenge = pkce_pair()
    with oauth.browser() as browser:
        consent = oauth.sign_in(browser, oauth.authorize_params(client, challenge))
    assert consent.status_code == 200
    assert "Report Bot &lt;b&gt;" in consent.text  # escaped, never markup
    assert f"127.0.0.1:{oauth.live.port + 1}" in consent.text
    assert "registered itself" in consent.text
    # The consent form may redirect to the client's origin, and nowhere else.
    assert f"form-action 'self' http://127.0.0.1:{oauth.live.port + 1};" in consent.headers["content-security-policy"]


def test_state_comes_back_with_the_code_and_the_issuer(oauth):
    client = oauth.register()
    answer, _, params = oauth.authorize(client, state="xyz-123")
    assert answer["state"] == "xyz-123"
    assert answer["iss"] == oauth.settings.embedded_issuer_url
    assert set(answer) == {"code", "state", "iss"}


def test_wrong_password_and_unknown_user_get_the_same_answer(oauth):
    client = oauth.register()
    pages = []
    for user, password in (("alice", "not-her-password"), ("nobody", "whatever-it-is")):
        with oauth.browser() as browser:
            pages.append(oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1]), user, password))
    assert pages[0].status_code == pages[1].status_code == 200
    assert "Wrong user name or password." in pages[0].text
    assert _without_request_id(pages[0]) == _without_request_id(pages[1])


def test_disabled_user_is_refused_even_with_the_right_password(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1]), "carol", PASSWORDS["carol"])
    assert page.status_code == 403
    assert "disabled" in page.text and "decision" not in page.text


def test_user_disabled_between_sign_in_and_consent_sends_access_denied(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        consent = oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1], state="s1"))
        PolicyAdmin(oauth.engine).set_user_disabled("alice", True)
        answer = browser.post("/authorize/consent", data={"request": form_request_id(consent), "decision": "allow"})
    params = redirect_params(answer)
    assert params["error"] == "access_denied" and params["state"] == "s1" and "code" not in params


def test_deny_sends_access_denied_with_the_state(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        consent = oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1], state="s2"))
        answer = browser.post("/authorize/consent", data={"request": form_request_id(consent), "decision": "deny"})
    params = redirect_params(answer)
    assert params == {"error": "access_denied", "state": "s2", "iss": oauth.settings.embedded_issuer_url} | {
        k: v for k, v in params.items() if k == "error_description"
    }


def test_an_authorization_request_can_be_answered_only_once(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        consent = oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1]))
        request_id = form_request_id(consent)
        first = browser.post("/authorize/consent", data={"request": request_id, "decision": "allow"})
        again = browser.post("/authorize/consent", data={"request": request_id, "decision": "allow"})
        login_again = browser.post("/authorize/login", data={"request": request_id, "username": "alice", "password": PASSWORDS["alice"]})
    assert first.status_code == 302
    assert again.status_code == 400 and "location" not in again.headers
    assert login_again.status_code == 400 and "expired or was already answered" in login_again.text


def test_a_reused_state_is_refused(oauth):
    client = oauth.register()
    verifier, challenge = pkce_pair()
    params = oauth.authorize_params(client, challenge, state="same-state")
    with oauth.browser() as browser:
        assert browser.get("/authorize", params=params).status_code == 200
        replay = browser.get("/authorize", params=params)
    answer = redirect_params(replay)
    assert answer["error"] == "invalid_request" and answer["state"] == "same-state" and "code" not in answer


def test_forms_from_another_browser_are_refused(oauth):
    client = oauth.register()
    with oauth.browser() as victim, oauth.browser() as attacker:
        page = attacker.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
        victim.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))  # the victim has a cookie of its own
        forged = victim.post("/authorize/login", data={"request": form_request_id(page), "username": "alice", "password": PASSWORDS["alice"]})
    assert forged.status_code == 400 and "decision" not in forged.text


def test_forms_without_the_browser_cookie_are_refused(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
    bare = oauth.http.post("/authorize/login", data={"request": form_request_id(page), "username": "alice", "password": PASSWORDS["alice"]})
    assert bare.status_code == 400 and "decision" not in bare.text


def test_too_many_wrong_passwords_end_the_request(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
        request_id = form_request_id(page)
        answers = [
            browser.post("/authorize/login", data={"request": request_id, "username": "alice", "password": f"wrong-{i}"})
            for i in range(5)
        ]
        late = browser.post("/authorize/login", data={"request": request_id, "username": "alice", "password": PASSWORDS["alice"]})
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert late.status_code == 400


def test_unregistered_redirect_uri_is_shown_an_error_and_never_redirected_to(oauth):
    client = oauth.register()
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1], redirect_uri="https://evil.example/cb"))
    assert page.status_code == 400 and "location" not in page.headers
    assert "evil.example" not in page.headers.get("content-security-policy", "")


def test_unknown_client_is_shown_an_error(oauth):
    with oauth.browser() as browser:
        page = browser.get("/authorize", params={"response_type": "code", "client_id": "nobody", "redirect_uri": "http://127.0.0.1:1/cb"})
    assert page.status_code == 400 and "location" not in page.headers


def test_loopback_redirect_may_use_another_port(oauth):
    client = oauth.register(redirect_uri="http://127.0.0.1:8400/callback")
    client.redirect_uri = "http://127.0.0.1:51234/callback"
    answer, verifier, _ = oauth.authorize(client)
    assert oauth.exchange(client, answer["code"], verifier).status_code == 200


def test_localhost_redirect_must_match_its_port(oauth):
    client = oauth.register(redirect_uri="http://localhost:8400/callback")
    with oauth.browser() as browser:
        page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1], redirect_uri="http://localhost:8401/callback"))
    assert page.status_code == 400 and "location" not in page.headers
