"""Resource Indicators for OAuth 2.0, RFC 8707 <https://www.rfc-editor.org/rfc/rfc8707>.

The `resource` parameter of the authorization and token requests names the
protected resource the token is for; it becomes the access token's `aud`.
This issuer serves exactly one resource, mcp-acl's own MCP endpoint, so a
request may name that resource or none (which means that one), and anything
else is refused with `invalid_target` (RFC 8707 §2).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown or malformed."""

    error = "invalid_target"
    status_code = 400


def requested_resource(request: OAuth2Request, served: str, bound: str | None = None) -> str:
    """The audience for this request: `served` (or what the code/token is bound to).

    Raise InvalidTargetError for more than one resource, or one other than
    `bound` (when a code or refresh token fixes it) or `served`.
    """
    values = request.payload.datalist.get("resource", [])
    expected = bound or served
    if len(values) > 1:
        raise InvalidTargetError("Only one 'resource' may be requested.")
    if values and values[0] != expected:
        raise InvalidTargetError(f"This server issues tokens only for the resource {expected}.")
    return expected
