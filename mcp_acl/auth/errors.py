"""Errors of the authentication layer that are not token refusals."""

from __future__ import annotations


class AuthConfigError(ValueError):
    """The authentication settings cannot work as given (e.g. a JWKS URL with no issuer)."""


class KeysUnavailable(RuntimeError):
    """The issuer's public keys could not be fetched or read; tokens are refused meanwhile."""


class SigningError(ValueError):
    """A token cannot be signed as asked (no active key, a lifetime beyond the limit)."""
