"""Proof Key for Code Exchange, RFC 7636 <https://www.rfc-editor.org/rfc/rfc7636>,
as OAuth 2.1 and the MCP authorization spec require it: for every client,
S256 only.

`plain` is refused, and so is a request without a method, because RFC 7636
§4.3 makes a missing method mean `plain`. A token request without a
`code_verifier` is refused. Authlib's `CodeChallenge` extension accepts
`plain` and registers its checks as hooks in a set (no fixed order), so the
checks are written out here and called in a fixed place by the grant.
"""

from __future__ import annotations

import hmac

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN, CODE_VERIFIER_PATTERN

METHOD = "S256"


def _single(request: OAuth2Request, name: str) -> str | None:
    values = request.payload.datalist.get(name, [])
    if len(values) > 1:
        raise InvalidRequestError(f"Multiple '{name}' in request.")
    return values[0] if values else None


def require_challenge(request: OAuth2Request) -> tuple[str, str]:
    """The (challenge, method) of an authorization request; raise unless it is S256."""
    challenge = _single(request, "code_challenge")
    method = _single(request, "code_challenge_method")
    if not challenge:
        raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.")
    if method != METHOD:
        raise InvalidRequestError("Unsupported 'code_challenge_method': only S256 is accepted.")
    if not CODE_CHALLENGE_PATTERN.match(challenge):
        raise InvalidRequestError("Invalid 'code_challenge'.")
    return challenge, method


def check_verifier(request: OAuth2Request, challenge: str, method: str) -> None:
    """Raise unless the token request's `code_verifier` answers the stored challenge."""
    verifier = _single(request, "code_verifier")
    if not verifier:
        raise InvalidRequestError("Missing 'code_verifier'.")
    if not CODE_VERIFIER_PATTERN.match(verifier):
        raise InvalidRequestError("Invalid 'code_verifier'.")
    # Only S256 codes are ever stored; anything else is refused, not trusted.
    if method != METHOD or not hmac.compare_digest(create_s256_code_challenge(verifier), challenge):
        raise InvalidGrantError("Code challenge failed.")
