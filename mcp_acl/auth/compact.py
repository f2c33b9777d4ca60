"""The JWS compact serialization (RFC 7515 §7.1), read before any key is touched.

https://www.rfc-editor.org/rfc/rfc7515#section-7.1

    BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)

Only the shape and the header are judged here; the signature is checked by
joserfc with `SIGNATURE_REGISTRY`, which knows nothing but the allow-list.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jws import JWSRegistry

# Asymmetric algorithms only: "none" and the HMAC family (HS*) would let a
# public key or no key at all stand in for the issuer's signature.
ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA", "Ed25519")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class MalformedToken(ValueError):
    """The token is not a well-formed JWS compact serialization; the message is safe to show."""


class _AllowListRegistry(JWSRegistry):
    """A JWS registry that knows only ALLOWED_ALGORITHMS."""

    def get_alg(self, name: str):
        """The algorithm `name` if allowed, else UnsupportedAlgorithmError."""
        # Looked up directly: joserfc's own lookup warns for "EdDSA", a name
        # RFC 9864 deprecates although the signatures stay sound.
        if name not in ALLOWED_ALGORITHMS or name not in self.algorithms:
            raise UnsupportedAlgorithmError(f"algorithm {name!r} is not allowed")
        return self.algorithms[name]


# Header members beyond the registered ones are ignored, not refused: some
# IdPs add their own (Entra sends `nonce`). `crit` is refused in parse_compact.
SIGNATURE_REGISTRY = _AllowListRegistry(algorithms=ALLOWED_ALGORITHMS, strict_check_header=False)


@dataclass(frozen=True)
class CompactToken:
    """A token whose shape and header passed; its signature is not checked yet."""

    text: str
    header: dict
    alg: str
    payload_segment: str

    def claims(self) -> dict:
        """The payload as a JSON object (call only after the signature was verified)."""
        return decode_json_object(self.payload_segment, "the token's claims are not a JSON object")


def normalize_typ(typ: object) -> str | None:
    """A `typ` value compared the way RFC 7515 §4.1.9 says: case-insensitive, `application/` optional.

    Example: "application/AT+JWT" -> "at+jwt"
    """
    if not isinstance(typ, str):
        return None
    typ = typ.strip().lower()
    return typ.removeprefix("application/")


def _unique_members(pairs: list[tuple[str, object]]) -> dict:
    # A repeated member name is read differently by different parsers.
    obj: dict = {}
    for name, value in pairs:
        if name in obj:
            raise MalformedToken("the token repeats a member name")
        obj[name] = value
    return obj


def _no_constants(name: str) -> object:
    raise MalformedToken(f"the token holds the non-JSON number {name}")


def decode_json_object(segment: str, message: str) -> dict:
    """A base64url segment decoded to a JSON object; MalformedToken(`message`) if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw, object_pairs_hook=_unique_members, parse_constant=_no_constants)
    except MalformedToken:
        raise
    except (binascii.Error, ValueError, RecursionError):
        raise MalformedToken(message) from None
    if not isinstance(value, dict):
        raise MalformedToken(message)
    return value


def parse_compact(token: str) -> CompactToken:
    """Check the shape and the header's `alg` and `crit`; return the parts for verification."""
    if not token.isascii():
        raise MalformedToken("the token is not a JWS compact serialization")
    parts = token.split(".")
    if len(parts) == 5:
        raise MalformedToken("encrypted tokens (JWE) are not accepted")
    if len(parts) != 3:
        raise MalformedToken("the token is not a signed JWT")
    header_segment, payload_segment, signature = parts
    if not signature:
        raise MalformedToken("the token carries no signature")
    if not all(_B64URL.fullmatch(part) for part in parts):
        raise MalformedToken("the token is not base64url-encoded")
    header = decode_json_object(header_segment, "the token's header is not a JSON object")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise MalformedToken("the token's algorithm is not accepted")
    if "crit" in header:
        raise MalformedToken("the token has critical header parameters this server does not understand")
    return CompactToken(token, header, alg, payload_segment)
