"""Reading the JWS compact serialization and comparing `typ` values."""

from __future__ import annotations

import pytest

from mcp_acl.auth.compact import ALLOWED_ALGORITHMS, MalformedToken, normalize_typ, parse_compact
from tests.auth.support import b64, b64json


@pytest.mark.parametrize(("typ", "normal"), [("at+jwt", "at+jwt"), ("application/AT+JWT", "at+jwt"), ("JWT", "jwt"), (None, None), (3, None)])
def test_typ_is_compared_case_insensitively_without_the_application_prefix(typ, normal):
    assert normalize_typ(typ) == normal


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "RS384", "None", ""])
def test_algorithms_outside_the_allow_list_are_refused(alg):
    with pytest.raises(MalformedToken, match="algorithm"):
        parse_compact(f"{b64json({'alg': alg, 'kid': 'k'})}.{b64json({})}.{b64(b'sig')}")


@pytest.mark.parametrize("alg", ALLOWED_ALGORITHMS)
def test_allowed_algorithms_pass_the_shape_check(alg):
    assert parse_compact(f"{b64json({'alg': alg, 'kid': 'k'})}.{b64json({})}.{b64(b'sig')}").alg == alg


def test_non_json_constants_in_claims_are_refused():
    payload = b64(b'{"exp": NaN}')
    token = parse_compact(f"{b64json({'alg': 'RS256', 'kid': 'k'})}.{payload}.{b64(b'sig')}")
    with pytest.raises(MalformedToken, match="non-JSON number"):
        token.claims()
