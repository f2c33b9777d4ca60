"""Pending authorization requests in the store: browser binding, single use, state reuse."""

from __future__ import annotations

import pytest

from mcp_acl.oauth.signin_requests import MAX_FAILED_LOGINS, SignInRequests, StateReusedError
from mcp_acl.store import tables as t


@pytest.fixture
def requests(principals) -> SignInRequests:
    return SignInRequests(principals)


def _start(requests: SignInRequests, state: str | None = "s", client: str = "app", browser: str = "b1") -> str:
    return requests.start(client_id=client, params={"state": state, "client_id": client} if state else {}, browser_id=browser)


def test_a_request_is_found_only_from_the_browser_that_started_it(requests):
    request_id = _start(requests)
    assert requests.find(request_id, "b1").client_id == "app"
    assert requests.find(request_id, "b2") is None
    assert requests.find(request_id, None) is None
    assert requests.find("guess", "b1") is None


def test_a_request_is_consumed_once_and_only_after_sign_in(requests):
    request_id = _start(requests)
    assert requests.consume(request_id, "b1") is None  # nobody signed in yet
    assert requests.signed_in(request_id, "b1", "alice")
    assert requests.consume(request_id, "b1").user_name == "alice"
    assert requests.consume(request_id, "b1") is None
    assert requests.find(request_id, "b1") is None


def test_a_state_can_be_used_once_per_client(requests):
    _start(requests, "same")
    with pytest.raises(StateReusedError):
        _start(requests, "same")
    _start(requests, "same", client="other")
    _start(requests, None)
    _start(requests, None)


def test_an_expired_request_is_gone(engine, requests, expire):
    request_id = _start(requests)
    expire(engine, t.oauth_authorization_requests)
    assert requests.find(request_id, "b1") is None
    assert not requests.signed_in(request_id, "b1", "alice")


def test_failed_sign_ins_use_up_the_request(requests):
    request_id = _start(requests)
    results = [requests.failed_login(request_id, "b1") for _ in range(MAX_FAILED_LOGINS)]
    assert results == [True] * (MAX_FAILED_LOGINS - 1) + [False]
    assert requests.find(request_id, "b1") is None
