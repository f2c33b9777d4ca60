"""The interactive part of the authorization endpoint (RFC 6749 §4.1.1-4.1.2):
GET /authorize checks the request and shows the sign-in form; POST
/authorize/login checks the password and shows the consent form; POST
/authorize/consent answers the client with a code (allow) or
`access_denied` (deny), with `state` and, per RFC 9207, `iss`.

Until the redirect URI is known to be the client's, errors are shown on a
page and never redirected (RFC 6749 §4.1.2.1).

The password step, in order: the request must be live and this browser's;
an account name or address in back-off (`signin_limits`) is refused before
any password is checked; a wrong password is counted there, audited
(counted per address, `on_refused`) and against the request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from mcp_acl.oauth import pages
from mcp_acl.oauth._digest import new_token
from mcp_acl.oauth.adapter import BodyError, HttpRequestData, read_request
from mcp_acl.oauth.grants import SignedInUser, active_user
from mcp_acl.oauth.metadata import AUTHORIZE_PATH
from mcp_acl.oauth.pages import AccessSummary, ClientView
from mcp_acl.oauth.passwords import LoginOutcome, check_login, known_user
from mcp_acl.oauth.server import EmbeddedAuthorizationServer
from mcp_acl.oauth.signin_limits import SignInLimits
from mcp_acl.oauth.signin_requests import PendingRequest, SignInRequests, StateReusedError

LOGIN_PATH = AUTHORIZE_PATH + "/login"
CONSENT_PATH = AUTHORIZE_PATH + "/consent"
WRONG_LOGIN = "Wrong user name or password."
DISABLED_LOGIN = "This account is disabled. Ask an administrator."
GONE = "This sign-in request has expired or was already answered. Start again from your app."
TOO_MANY = "Too many failed sign-ins. Start again from your app."
NO_WAY_BACK = (
    "Go back to the app you came from and start the sign-in again. If this page comes back, the app asks "
    "mcp-acl for something it did not register (for example another redirect address): tell whoever runs "
    "the app, or your mcp-acl administrator, and quote the message above."
)

log = logging.getLogger(__name__)

# (client address, reason, user name when it names an account, client id; keyword
# at_once=True: not folded into a count): see gateway.refusals.RefusalLog.sign_in_refused.
SignInRefused = Callable[..., None]
# (user name, client id) -> what the user's grants let that client use.
AccessPreview = Callable[[str, str], AccessSummary]


class SignInFlow:
    """The three Starlette endpoints of the browser sign-in."""

    def __init__(
        self, server: EmbeddedAuthorizationServer, requests: SignInRequests, *,
        limits: SignInLimits | None = None, on_refused: SignInRefused | None = None,
        access: AccessPreview | None = None,
    ) -> None:
        self.server = server
        self.requests = requests
        self.limits = limits if limits is not None else SignInLimits()
        self.on_refused = on_refused
        self.access = access
        options = server.options
        # __Host- cookies are pinned to this exact origin (https only).
        self.cookie = "__Host-mcp_acl_browser" if options.secure_cookies else "mcp_acl_browser"
        self.login_action = options.path + LOGIN_PATH
        self.consent_action = options.path + CONSENT_PATH

    # --- endpoints --------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """GET /authorize: validate the request, remember it, show the sign-in form."""
        data = await read_request(request, self.server.options.origin)
        browser_id = request.cookies.get(self.cookie)
        new_browser = not browser_id
        browser_id = browser_id or new_token()
        response = await run_in_threadpool(self._start, data, browser_id)
        if new_browser:
            response.set_cookie(
                self.cookie, browser_id, path="/", httponly=True, samesite="lax", secure=self.server.options.secure_cookies,
            )
        return response

    async def login(self, request: Request) -> Response:
        """POST /authorize/login: check the password, then ask for consent."""
        form = await self._form(request)
        if form is None:
            return pages.error_page(GONE)
        address = request.client.host if request.client else None
        return await run_in_threadpool(self._login, form, request.cookies.get(self.cookie), address)

    async def consent(self, request: Request) -> Response:
        """POST /authorize/consent: answer the client (code or access_denied)."""
        form = await self._form(request)
        if form is None:
            return pages.error_page(GONE)
        return await run_in_threadpool(self._consent, form, request.cookies.get(self.cookie))

    # --- steps (in a worker thread: they touch the database) ---------------

    def _start(self, data: HttpRequestData, browser_id: str) -> Response:
        oauth_request = self.server.create_oauth2_request(data)
        try:
            grant = self.server.get_consent_grant(oauth_request, end_user=None)
        except OAuth2Error as error:
            return self._error(oauth_request, error)
        params = dict(data.query)
        try:
            request_id = self.requests.start(client_id=grant.client.client_id, params=params, browser_id=browser_id)
        except StateReusedError:
            error = InvalidRequestError("This 'state' was already used: start a new authorization request.")
            error.redirect_uri, error.state = grant.redirect_uri, params.get("state")
            return self._error(oauth_request, error)
        return pages.sign_in_page(self.login_action, request_id, _view(grant.client))

    def _login(self, form: dict[str, str], browser_id: str | None, address: str | None) -> Response:
        request_id = form.get("request", "")
        pending = self.requests.find(request_id, browser_id)
        client = self.server.clients.get(pending.client_id) if pending else None
        if pending is None or client is None:
            return pages.error_page(GONE)
        view = _view(client)
        username, password = form.get("username", "").strip(), form.get("password", "")
        # In a back-off no password is checked at all: the right one is refused too.
        # Attempts in flight count against the free failures, so concurrent
        # guesses cannot all slip in before the first is found wrong.
        wait = self.limits.begin(username, address, self.limits.clock())
        if wait > 0:
            self._refused(address, "sign-in refused: waiting out the back-off after failed sign-ins", username, client)
            return self._back_off(request_id, view, wait)
        try:
            outcome = check_login(self.server.engine, username, password) if username else LoginOutcome.REFUSED
        except BaseException:
            self.limits.end(username, address, self.limits.clock(), wrong=False)  # no answer: nothing to count
            raise
        # A disabled account's right password counts too: it bounds how often that row is written.
        self.limits.end(username, address, self.limits.clock(), wrong=outcome is not LoginOutcome.OK)
        if outcome is LoginOutcome.REFUSED:
            self._refused(address, "sign-in refused: wrong user name or password", username, client)
            if not self.requests.failed_login(request_id, browser_id):
                return pages.error_page(TOO_MANY, 429)
            wait = self.limits.wait(username, address, self.limits.clock())
            if wait > 0:
                return self._back_off(request_id, view, wait)
            return pages.sign_in_page(self.login_action, request_id, view, WRONG_LOGIN)
        if outcome is LoginOutcome.DISABLED:
            # Written at once: someone holds a disabled account's password.
            self._refused(address, "sign-in refused: the account is disabled", username, client, at_once=True)
            return pages.sign_in_page(self.login_action, request_id, view, DISABLED_LOGIN, 403)
        self.limits.succeeded(username)
        if not self.requests.signed_in(request_id, browser_id, username):
            return pages.error_page(GONE)
        params = pending.params
        return pages.consent_page(
            self.consent_action, request_id, user=username, client=view,
            redirect_uri=params.get("redirect_uri") or client.get_default_redirect_uri() or "",
            scope=client.get_allowed_scope(params.get("scope")) or "", resource=self.server.options.resource,
            access=self._access(username, client.client_id),
        )

    def _consent(self, form: dict[str, str], browser_id: str | None) -> Response:
        pending = self.requests.consume(form.get("request", ""), browser_id)
        if pending is None:
            return pages.error_page(GONE)
        oauth_request = self.server.create_oauth2_request(self._replay(pending))
        try:
            # Checked again: the client or its redirect URIs may have changed since.
            grant = self.server.get_consent_grant(oauth_request, end_user=None)
        except OAuth2Error as error:
            return self._error(oauth_request, error)
        try:
            user = active_user(self.server, pending.user_name)
        except InvalidGrantError:
            user = None  # disabled since signing in: the client hears access_denied
        allowed = form.get("decision") == "allow" and user is not None
        response = self.server.create_authorization_response(
            oauth_request, grant_user=SignedInUser(user.name) if allowed else None, grant=grant,
        )
        return self._with_issuer(response)

    # --- helpers ----------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str] | None:
        try:
            data = await read_request(request, self.server.options.origin)
        except BodyError:
            return None
        return dict(data.form)

    def _replay(self, pending: PendingRequest) -> HttpRequestData:
        query = tuple(pending.params.items())
        uri = self.server.options.url(AUTHORIZE_PATH) + "?" + urlencode(query)
        return HttpRequestData("GET", uri, Headers(), query)

    def _error(self, oauth_request, error: OAuth2Error) -> Response:
        if error.redirect_uri:
            return self._with_issuer(self.server.handle_error_response(oauth_request, error))
        return pages.error_page(error.description or error.error, next_step=NO_WAY_BACK)

    def _back_off(self, request_id: str, view: ClientView, wait: float) -> Response:
        # The same words for every account name, known or not: nothing tells who exists.
        seconds = math.ceil(wait)
        at = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%H:%M:%S UTC")
        message = f"Too many failed sign-ins. Try again in {seconds} seconds (after {at})."
        return pages.sign_in_page(self.login_action, request_id, view, message, 429, retry_after=seconds)

    def _refused(self, address: str | None, reason: str, username: str, client, *, at_once: bool = False) -> None:
        if self.on_refused is None:
            return
        try:
            # A name is kept only when it is an account: a password typed into the name field never is.
            subject = username if username and known_user(self.server.engine, username) else None
            if at_once:
                self.on_refused(address, reason, subject, client.client_id, at_once=True)
            else:
                self.on_refused(address, reason, subject, client.client_id)
        except Exception:
            log.exception("a refused sign-in could not be audited")

    def _access(self, username: str, client_id: str) -> AccessSummary | None:
        if self.access is None:
            return None
        try:
            return self.access(username, client_id)
        except Exception as exc:
            # Only the page's summary is missing; every call is still decided when made.
            log.warning("the consent page cannot say what %s may use: %s", client_id, exc.__class__.__name__)
            return None

    def _with_issuer(self, response: Response) -> Response:
        location = response.headers.get("location")
        if location:
            # RFC 9207 §2: the client checks it came back from the issuer it went to.
            response.headers["location"] = add_params_to_uri(location, [("iss", self.server.options.issuer)])
        return response


def _view(client) -> ClientView:
    return ClientView(client.client_id, client.name or None, client.registered_via != "dynamic", getattr(client, "origin", None))
