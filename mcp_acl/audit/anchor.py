"""Signed checkpoints of the audit chain, kept outside the database.

Someone who can write the database can delete the newest rows and rewrite
the head record to match, or rewrite the whole chain from some row on; the
table alone cannot show it. An anchor can: a JWS (RFC 7515, compact form)
naming the newest row's id and hash when it was made, signed with an
Ed25519 key (RFC 8037) that lives in a file, never in the database:

    header   {"alg": "Ed25519", "kid": <RFC 7638 thumbprint>, "typ": "mcp-acl-audit-anchor"}
    payload  {"head_id": 41, "head_hash": "9f2c…", "iat": 1796000000}

Later, `verify.check_anchor` confirms the chain still reaches row `head_id` and
that row still has `head_hash`. Since every row's hash covers the one
before it, that vouches for every row up to the anchor.

The key file holds a private JWK (made on first use, mode 0600); a file
holding only the public half is enough to verify.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import OKPKey

from mcp_acl.audit.chain import GENESIS_HASH
from mcp_acl.audit.verify import Anchor, VerifyResult

ALGORITHM = "Ed25519"
TYP = "mcp-acl-audit-anchor"
KEY_ENV = "MCP_ACL_AUDIT_ANCHOR_KEY"


class AnchorError(ValueError):
    """An anchor or its key could not be made, read or trusted."""


def load_key(path: Path, *, create: bool = False) -> tuple[OKPKey, bool]:
    """The Ed25519 key in `path` and whether it was just made (only with `create`, when there was none)."""
    if create and not path.exists():
        return _create_key(path), True
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        key = OKPKey.import_key(data)
    except FileNotFoundError:
        raise AnchorError(f"no anchor key at {path}: give the key the anchor was signed with (--key or {KEY_ENV})") from None
    except OSError as exc:
        raise AnchorError(f"cannot read the anchor key {path}: {exc.strerror}") from None
    except (ValueError, TypeError, JoseError) as exc:
        raise AnchorError(f"{path} holds no Ed25519 JSON Web Key ({exc.__class__.__name__})") from None
    if key.as_dict(private=False).get("crv") != "Ed25519":
        raise AnchorError(f"{path} holds no Ed25519 JSON Web Key")
    return key, False


def _create_key(path: Path) -> OKPKey:
    key = OKPKey.generate_key("Ed25519")
    body = json.dumps({**key.as_dict(private=True), "kid": key.thumbprint()}) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: never overwrite a key that appeared meanwhile; 0600: the
        # private key is readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise AnchorError(f"cannot create the anchor key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write(body)
    return key


def sign_anchor(key: OKPKey, head_id: int, head_hash: str, now: datetime) -> str:
    """The compact JWS anchoring row `head_id` (with `head_hash`) at `now`."""
    if not key.is_private:
        raise AnchorError("the anchor key holds only a public key: anchors are signed with the private key")
    header = {"alg": ALGORITHM, "kid": key.thumbprint(), "typ": TYP}
    claims = {"head_id": head_id, "head_hash": head_hash, "iat": int(now.timestamp())}
    return jws.serialize_compact(header, json.dumps(claims, separators=(",", ":")), key, algorithms=[ALGORITHM])


def anchor_verified(key: OKPKey, result: VerifyResult, now: datetime) -> str:
    """The anchor of the newest row of a chain `result` found intact (row 0, the genesis hash, when empty)."""
    if not result.ok:
        raise AnchorError("refusing to anchor a broken chain")
    return sign_anchor(key, result.count, result.head_hash or GENESIS_HASH, now)


def read_anchor(text: str, key: OKPKey) -> Anchor:
    """The checkpoint in `text` (a compact JWS) if `key` signed it; AnchorError otherwise."""
    try:
        token = jws.deserialize_compact(text.strip(), key, algorithms=[ALGORITHM])
    except BadSignatureError:
        raise AnchorError("the anchor's signature does not verify with this key: it was altered, or signed with another key") from None
    except (JoseError, ValueError) as exc:
        raise AnchorError(f"this is not a signed anchor ({exc.__class__.__name__}): it was altered, or is another file") from None
    if token.headers().get("typ") != TYP:
        raise AnchorError(f"this JWS is not an mcp-acl audit anchor (typ is not {TYP})")
    try:
        claims = json.loads(token.payload)
        head_id, head_hash, iat = claims["head_id"], claims["head_hash"], claims["iat"]
    except (ValueError, KeyError, TypeError):
        raise AnchorError("the anchor's payload is not {head_id, head_hash, iat}") from None
    if not (_is_int(head_id) and head_id >= 0 and isinstance(head_hash, str) and len(head_hash) == 64 and _is_int(iat)):
        raise AnchorError("the anchor's payload is not {head_id, head_hash, iat}")
    try:
        issued_at = datetime.fromtimestamp(iat, timezone.utc)
    except (OverflowError, ValueError, OSError):
        raise AnchorError("the anchor's iat is no time") from None
    return Anchor(head_id, head_hash, issued_at)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
