"""The failed sign-in back-off, per account and per address (the pure counter; end to end: test_signin.py)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

from mcp_acl.audit.refusal_windows import summarised_count
from mcp_acl.oauth.signin_limits import ADDRESS_FREE, SignInLimits
from tests.oauth.harness import PASSWORDS, form_request_id, pkce_pair


def _fail(limits: SignInLimits, times: int, account: str = "alice", address: str = "10.0.0.7", now: float = 0.0) -> None:
    for _ in range(times):
        limits.failed(account, address, now)


def test_no_wait_before_the_free_failures_are_used():
    limits = SignInLimits(account_free=5)
    _fail(limits, 4)
    assert limits.wait("alice", "10.0.0.7", 0.0) == 0


def test_the_back_off_doubles_with_each_failure_up_to_the_cap():
    limits = SignInLimits(account_free=3, address_free=100, base_delay=30, max_delay=600)
    waits = []
    for n in range(8):
        limits.failed("alice", "10.0.0.7", 0.0)
        waits.append(limits.wait("alice", "10.0.0.7", 0.0))
    assert waits == [0, 0, 30, 60, 120, 240, 480, 600]


def test_the_account_back_off_holds_from_any_address_and_for_any_spelling():
    limits = SignInLimits(account_free=2, address_free=100, base_delay=30)
    _fail(limits, 2)
    assert limits.wait(" Alice ", "192.0.2.1", 10.0) == 20


def test_the_address_back_off_holds_for_any_account():
    limits = SignInLimits(account_free=100, address_free=3, base_delay=30)
    for name in ("a", "b", "c"):
        limits.failed(name, "10.0.0.7", 0.0)
    assert limits.wait("alice", "10.0.0.7", 0.0) == 30
    assert limits.wait("alice", "10.0.0.8", 0.0) == 0


def test_a_back_off_ends_and_the_count_is_forgotten_after_a_quiet_hour():
    limits = SignInLimits(account_free=2, base_delay=30, forget_after=3600)
    _fail(limits, 2)
    assert limits.wait("alice", "10.0.0.7", 30.0) == 0
    limits.failed("alice", "10.0.0.7", 3600.0)  # a fresh count: one failure, no back-off
    assert limits.wait("alice", "10.0.0.7", 3600.0) == 0


def test_success_clears_the_account_but_not_the_address():
    limits = SignInLimits(account_free=2, address_free=3, base_delay=30)
    _fail(limits, 2, account="alice")
    limits.succeeded("alice")
    assert limits.wait("alice", "10.0.0.8", 0.0) == 0
    limits.failed("bob", "10.0.0.7", 0.0)  # the address's third failure
    assert limits.wait("carol", "10.0.0.7", 0.0) == 30


def test_unknown_and_real_names_are_counted_alike():
    limits = SignInLimits(account_free=2, address_free=100, base_delay=30)
    _fail(limits, 2, account="alice")
    _fail(limits, 2, account="nobody-at-all")
    assert limits.wait("alice", None, 0.0) == limits.wait("nobody-at-all", None, 0.0) == 30


def test_memory_is_bounded_to_the_most_recent_names():
    limits = SignInLimits(account_free=1, address_free=10**9, base_delay=30, max_entries=3)
    for n in range(10):
        limits.failed(f"user{n}", "10.0.0.7", 0.0)
    assert limits.wait("user9", None, 0.0) == 30
    assert limits.wait("user0", None, 0.0) == 0  # forgotten, the oldest


def test_attempts_in_flight_are_counted_so_concurrent_guesses_get_no_more_than_the_free_ones():
    limits = SignInLimits(account_free=3, address_free=100, base_delay=30)
    # Three attempts let through, none answered yet: the fourth already waits.
    assert [limits.begin("alice", "10.0.0.7", 0.0) for _ in range(4)] == [0, 0, 0, 30]


def test_a_right_password_starts_no_back_off_even_where_the_free_failures_are_used():
    limits = SignInLimits(account_free=3, address_free=2, base_delay=30)
    _fail(limits, 2, account="mallory")  # the address's back-off: 30 s from 0
    assert limits.begin("alice", "10.0.0.7", 31.0) == 0
    limits.end("alice", "10.0.0.7", 31.0, wrong=False)
    limits.succeeded("alice")
    assert limits.wait("carol", "10.0.0.7", 31.0) == 0


def test_past_the_free_failures_attempts_go_one_at_a_time():
    limits = SignInLimits(account_free=2, address_free=100, base_delay=30)
    _fail(limits, 2)
    assert limits.begin("alice", "10.0.0.7", 31.0) == 0
    assert limits.begin("alice", "10.0.0.7", 31.0) == 60  # the back-off the first would start if wrong
    limits.end("alice", "10.0.0.7", 31.0, wrong=True)
    assert limits.wait("alice", "10.0.0.7", 31.0) == 60


# --- end to end: the served sign-in page ------------------------------------

def _frozen(oauth, at: float = 1000.0) -> None:
    # The back-off runs on this clock: frozen, a back-off never ends during the test.
    oauth.live.app.state.sign_in_limits.clock = lambda: at


def _attempt(oauth, client, user: str, password: str, browser=None):
    """One sign-in attempt in a new authorization request (as an attacker would start one each time)."""
    own = browser is None
    browser = browser or oauth.browser()
    try:
        return oauth.sign_in(browser, oauth.authorize_params(client, pkce_pair()[1]), user, password)
    finally:
        if own:
            browser.close()


def _without_request_id(text: str) -> str:
    return re.sub(r'name=request value="[^"]+"|\(after [0-9:]+ UTC\)', "", text)


def test_the_right_password_is_refused_while_the_account_is_in_back_off_even_in_a_new_request(oauth):
    _frozen(oauth)
    client = oauth.register()
    answers = [_attempt(oauth, client, "alice", f"guess-{n}") for n in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    right = _attempt(oauth, client, "alice", PASSWORDS["alice"])
    assert right.status_code == 429 and right.headers["retry-after"] == "30"
    assert "Too many failed sign-ins. Try again in 30 seconds" in right.text
    assert "decision" not in right.text  # no consent form


def test_the_back_off_answer_is_the_same_for_an_account_that_does_not_exist(oauth):
    _frozen(oauth)
    client = oauth.register()
    pages = {}
    for user in ("alice", "nobody-here"):
        for n in range(5):
            _attempt(oauth, client, user, f"guess-{n}")
        pages[user] = _attempt(oauth, client, user, "one-more-guess")
    assert pages["alice"].status_code == pages["nobody-here"].status_code == 429
    assert _without_request_id(pages["alice"].text) == _without_request_id(pages["nobody-here"].text)


def test_many_accounts_tried_from_one_address_put_the_address_in_back_off(oauth):
    _frozen(oauth)
    client = oauth.register()
    for n in range(ADDRESS_FREE):
        _attempt(oauth, client, f"user-{n}", "guess")
    right = _attempt(oauth, client, "bob", PASSWORDS["bob"])
    assert right.status_code == 429 and "Try again in" in right.text


def test_failed_sign_ins_are_audited_once_then_summarised_per_address(oauth):
    client = oauth.register()
    for n in range(4):
        _attempt(oauth, client, "alice", f"guess-{n}")
    _attempt(oauth, client, "alice\nforged", "guess")  # not an account: no name kept
    oauth.live.stop()  # shutdown writes the open count
    rows = oauth.world.audit_rows(kind="authentication")
    assert rows[0].reason == "sign-in refused: wrong user name or password (from 127.0.0.1)"
    assert (rows[0].subject, rows[0].client_id) == ("alice", client.client_id)
    assert len(rows) == 2 and sum(summarised_count(r.reason) for r in rows) == 5
    assert rows[1].reason.startswith("4 more refused sign-ins from 127.0.0.1 in ")
    assert rows[1].subject is None


def _record_refusals(oauth) -> list[str]:
    """The reasons the sign-in flow reports to the audit hook, in order (the hook still runs)."""
    (flow,) = {r.endpoint.__self__ for r in oauth.live.app.routes if getattr(r, "path", "").endswith("/authorize/login")}
    reasons: list[str] = []
    audit = flow.on_refused

    def recorded(address, reason, subject, client_id):
        reasons.append(reason)
        audit(address, reason, subject, client_id)

    flow.on_refused = recorded
    return reasons


def test_guesses_sent_all_at_once_get_no_more_password_checks_than_the_free_ones(oauth):
    _frozen(oauth)
    client = oauth.register()
    reasons = _record_refusals(oauth)
    start = threading.Barrier(12)

    def guess(n: int):
        browser = oauth.browser()
        try:
            page = browser.get("/authorize", params=oauth.authorize_params(client, pkce_pair()[1]))
            start.wait()  # every form is open: the guesses go in together
            return browser.post("/authorize/login", data={
                "request": form_request_id(page), "username": "alice", "password": f"guess-{n}",
            })
        finally:
            browser.close()

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(guess, range(12)))
    assert len(answers) == len(reasons) == 12
    # Without counting attempts in flight, every guess could pass the check before the first failed.
    assert reasons.count("sign-in refused: wrong user name or password") == 5


def test_other_addresses_of_one_ipv6_64_share_the_address_back_off():
    limits = SignInLimits(account_free=100, address_free=3, base_delay=30)
    for n in range(3):
        limits.failed(f"user{n}", f"2001:db8:1:2::{n + 1}", 0.0)
    assert limits.wait("alice", "2001:db8:1:2:ffff::9", 0.0) == 30
    assert limits.wait("alice", "2001:db8:1:3::1", 0.0) == 0


def test_a_disabled_accounts_right_password_is_audited_at_once_not_folded_into_a_count(oauth):
    from mcp_acl.store import PolicyAdmin

    client = oauth.register()
    _attempt(oauth, client, "alice", "guess")  # opens the address's window: the next ones are only counted
    PolicyAdmin(oauth.engine).set_user_disabled("alice", True)
    page = _attempt(oauth, client, "alice", PASSWORDS["alice"])
    assert page.status_code == 403
    rows = oauth.world.audit_rows(kind="authentication")  # before any window ends
    assert [(r.reason, r.subject) for r in rows[1:]] == [("sign-in refused: the account is disabled (from 127.0.0.1)", "alice")]
