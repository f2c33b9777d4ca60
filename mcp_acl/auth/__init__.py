"""Authentication: access-token verification and the embedded issuer."""
