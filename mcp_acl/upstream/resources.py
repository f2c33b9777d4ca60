"""An upstream's resources and resource templates as catalogue entries under `upstream://NAME/`.

An upstream's own URI `note://alpha` is offered as `upstream://NAME/note://alpha`
(its template `note://{id}` as `upstream://NAME/note://{id}`): the prefix
embeds the upstream's name, so two upstreams never offer the same URI and
grants name them as `resource:upstream://NAME/*`. A read strips the prefix,
forwards resources/read with the upstream's own URI, and hands the contents
back under the gateway's URIs.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

import anyio
import mcp_types as types
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from mcp_acl.gateway.specs import CallContext, ResourceSpec, ResourceTemplateSpec, upstream_uri
from mcp_acl.policy import PolicyError, parse_target
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.forwarding import forward

log = logging.getLogger(__name__)


def reader(conn: UpstreamConnection):
    """A reader that forwards resources/read for a gateway URI of this upstream and maps the contents' URIs back."""
    prefix = upstream_uri(conn.upstream.name)

    async def read(uri: str, ctx: CallContext) -> types.ReadResourceResult:
        own = uri.removeprefix(prefix)
        result = await forward(conn, ctx, f"read {own}", lambda client: client.read_resource(own))
        # Every content the upstream returns is one of its own URIs: offer it under the gateway's form.
        contents = [c.model_copy(update={"uri": prefix + c.uri}) for c in result.contents]
        # A new result, not a copy: the upstream's cache hints (ttl, scope) must not let a client
        # keep serving a read that the next decision might refuse.
        return types.ReadResourceResult(contents=contents)

    return read


def _dot_segments(uri: str) -> bool:
    # `note://public/../secret` must not reach an upstream that would resolve it to a URI
    # a grant denies: a templated read with `.` or `..` segments (encoded or not) is unknown.
    return any(segment in (".", "..") for segment in re.split(r"[/\\]", unquote(uri)))


def _grantable(conn: UpstreamConnection, what: str, uri: str) -> bool:
    try:
        parse_target(f"resource:{uri}")
    except PolicyError:
        log.warning("upstream %s: %s %r left out: it cannot be named in a grant", conn.upstream.name, what, uri)
        return False
    return True


def resource_specs(conn: UpstreamConnection, resources: list[types.Resource]) -> dict[str, ResourceSpec]:
    """The upstream's resources as catalogue entries by gateway URI (one that cannot be granted is left out, with a warning)."""
    read = reader(conn)
    found: dict[str, ResourceSpec] = {}
    for res in resources:
        uri = upstream_uri(conn.upstream.name, res.uri)
        if _grantable(conn, "resource", uri):
            found[uri] = ResourceSpec(uri=uri, name=res.name, reader=read, description=res.description, mime_type=res.mime_type)
    return found


def template_specs(conn: UpstreamConnection, templates: list[types.ResourceTemplate]) -> tuple[ResourceTemplateSpec, ...]:
    """The upstream's templates as catalogue entries: a gateway URI matches when its own part matches the template."""
    read, prefix = reader(conn), upstream_uri(conn.upstream.name)
    found: list[ResourceTemplateSpec] = []
    for tmpl in templates:
        try:
            parsed = UriTemplate.parse(tmpl.uri_template)
        except InvalidUriTemplate:
            log.warning("upstream %s: template %r left out: it is not an RFC 6570 template", conn.upstream.name, tmpl.uri_template)
            continue
        uri_template = prefix + tmpl.uri_template
        if not _grantable(conn, "template", uri_template):
            continue

        def matches(uri: str, parsed: UriTemplate = parsed) -> bool:
            own = uri.removeprefix(prefix)
            return uri.startswith(prefix) and not _dot_segments(own) and parsed.match(own) is not None

        found.append(ResourceTemplateSpec(
            uri_template=uri_template, name=tmpl.name, reader=read, matches=matches,
            description=tmpl.description, mime_type=tmpl.mime_type,
        ))
    return tuple(found)


async def read_resources(conn: UpstreamConnection) -> tuple[list[types.Resource], list[types.ResourceTemplate]]:
    """The upstream's resources and templates as it lists them now (every page); none when it offers no resources."""
    client, up = conn.client, conn.upstream
    if client is None or client.server_capabilities.resources is None:
        return [], []
    resources: list[types.Resource] = []
    templates: list[types.ResourceTemplate] = []
    with anyio.fail_after(up.timeout_seconds):
        cursor = None
        while True:
            page = await client.list_resources(cursor=cursor)
            resources.extend(page.resources)
            if not (cursor := page.next_cursor):
                break
        while True:
            tpage = await client.list_resource_templates(cursor=cursor)
            templates.extend(tpage.resource_templates)
            if not (cursor := tpage.next_cursor):
                break
    return resources, templates
