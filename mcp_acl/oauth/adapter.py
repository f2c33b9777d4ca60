"""Starlette requests as Authlib sees them.

Authlib is synchronous and reads request data through properties; Starlette
hands the body over asynchronously. So a request is read once, up front, into
an `HttpRequestData` (method, URL, headers, parameters), and the Authlib
request objects are built from that. The URL is rebuilt from the configured
issuer, not from the Host header, so what Authlib checks (https, or http on
loopback) is what the operator configured, whatever a proxy forwarded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import JsonPayload, JsonRequest, OAuth2Payload, OAuth2Request
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.requests import Request

MAX_BODY = 64 * 1024  # OAuth requests are small; anything bigger is refused unread.


class BodyError(ValueError):
    """A request body that is too large or not in the expected format."""


@dataclass(frozen=True)
class HttpRequestData:
    """One HTTP request, fully read: what Authlib's request objects are built from."""

    method: str
    uri: str
    headers: Headers
    query: tuple[tuple[str, str], ...]
    form: tuple[tuple[str, str], ...] = ()
    json: Any = None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyError("the request body is too large")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY:
            raise BodyError("the request body is too large")
    return bytes(body)


async def read_request(request: Request, origin: str, *, expect_json: bool = False) -> HttpRequestData:
    """Read `request` completely; `origin` is the issuer's scheme://host[:port]."""
    uri = origin + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = tuple(parse_qsl(request.url.query, keep_blank_values=True))
    if request.method != "POST":
        return HttpRequestData(request.method, uri, request.headers, query)
    body = await _read_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if expect_json:
        if content_type != "application/json":
            raise BodyError("send the registration as application/json")
        try:
            return HttpRequestData("POST", uri, request.headers, query, json=json.loads(body or b"null"))
        except ValueError as exc:
            raise BodyError("the body is not valid JSON") from exc
    if content_type != "application/x-www-form-urlencoded":
        raise BodyError("send the parameters as application/x-www-form-urlencoded")
    try:
        form = tuple(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
    except UnicodeDecodeError as exc:
        raise BodyError("the body is not UTF-8") from exc
    return HttpRequestData("POST", uri, request.headers, query, form)


class _Parameters(OAuth2Payload):
    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._data = ImmutableMultiDict(pairs)
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)

    @property
    def data(self) -> ImmutableMultiDict:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An Authlib OAuth2Request over `HttpRequestData`.

    The parameters are the query of a GET (the authorization endpoint) and
    the form body of a POST (token, revocation); a POST's query string is
    ignored, so no credential is read from a URL.
    """

    def __init__(self, data: HttpRequestData) -> None:
        super().__init__(method=data.method, uri=data.uri, headers=data.headers)
        self._args = ImmutableMultiDict(data.query)
        self._form = ImmutableMultiDict(data.form)
        self.payload = _Parameters(data.query if data.method == "GET" else data.form)

    @property
    def args(self) -> ImmutableMultiDict:
        return self._args

    @property
    def form(self) -> ImmutableMultiDict:
        return self._form


class _JsonBody(JsonPayload):
    def __init__(self, value: Any) -> None:
        self._value = value

    @property
    def data(self) -> Any:
        return self._value


class StarletteJsonRequest(JsonRequest):
    """An Authlib JsonRequest (the registration endpoint) over `HttpRequestData`."""

    def __init__(self, data: HttpRequestData) -> None:
        super().__init__(data.method, data.uri, data.headers)
        self.payload = _JsonBody(data.json)
