"""Upstream resources, templates and prompts in the catalogue: each upstream's entries stay in its own namespace."""

from __future__ import annotations

import mcp_types as types
import pytest

from mcp_acl.gateway.catalogue import Catalogue, NamespaceEntries
from mcp_acl.gateway.specs import CallContext, ResourceSpec, ToolError, upstream_uri
from mcp_acl.policy import Identity
from mcp_acl.store.upstreams import Upstream
from mcp_acl.upstream.connection import UpstreamConnection
from mcp_acl.upstream.prompts import to_spec
from mcp_acl.upstream.resources import resource_specs, template_specs


def connection(name: str) -> UpstreamConnection:
    """A connection that was never opened (its upstream is down)."""
    return UpstreamConnection(Upstream(name, "http", url="http://127.0.0.1:9/mcp"), log_failures=False)


def offered(name: str) -> NamespaceEntries:
    conn = connection(name)
    prompt = to_spec(conn, types.Prompt(name="review", arguments=[types.PromptArgument(name="topic", required=True)]))
    return NamespaceEntries(
        resources=resource_specs(conn, [types.Resource(uri="note://alpha", name="alpha")]),
        templates=template_specs(conn, [types.ResourceTemplate(uri_template="note://{+path}", name="note")]),
        prompts={prompt.name: prompt},
    )


def test_upstream_uris_embed_the_name_and_never_collide():
    assert upstream_uri("notes", "note://alpha") == "upstream://notes/note://alpha"
    builtin = ResourceSpec(uri="file:///reports/q3.md", name="q3", reader=lambda uri, ctx: "q3")
    catalogue = Catalogue(resources={builtin.uri: builtin})
    catalogue.replace_namespace("note", offered("note"))
    catalogue.replace_namespace("notes", offered("notes"))
    assert set(catalogue.list_resources()) == {"file:///reports/q3.md", "upstream://note/note://alpha", "upstream://notes/note://alpha"}
    assert set(catalogue.prompts) == {"note.review", "notes.review"}
    # A URI under one upstream's template is that upstream's, and only URIs its template matches.
    assert catalogue.resource("upstream://notes/note://7").uri_template == "upstream://notes/note://{+path}"
    assert catalogue.resource("upstream://note/note://7").uri_template == "upstream://note/note://{+path}"
    assert catalogue.resource("upstream://notes/other://7") is None
    assert catalogue.resource("upstream://nobody/note://7") is None
    # A dot segment could reach a URI a grant denies once the upstream resolves it: never forwarded.
    for dodge in ("upstream://notes/note://x/../secret", "upstream://notes/note://%2e%2e/secret", "upstream://notes/note://./7"):
        assert catalogue.resource(dodge) is None, dodge
    # Re-reading one upstream (here: it now offers nothing) leaves the others and the built-ins alone.
    catalogue.replace_namespace("note", NamespaceEntries())
    assert set(catalogue.list_resources()) == {"file:///reports/q3.md", "upstream://notes/note://alpha"}
    assert [t.uri_template for t in catalogue.templates] == ["upstream://notes/note://{+path}"]
    assert set(catalogue.prompts) == {"notes.review"}


def test_what_cannot_be_granted_or_parsed_is_left_out():
    conn = connection("notes")
    assert resource_specs(conn, [types.Resource(uri="note://has space", name="x")]) == {}
    assert template_specs(conn, [types.ResourceTemplate(uri_template="note://{unclosed", name="x")]) == ()
    assert to_spec(conn, types.Prompt(name="has space")) is None


async def test_an_upstream_that_is_down_is_one_sentence():
    conn = connection("notes")
    ctx = CallContext(identity=Identity("alice"))
    down = 'the upstream "notes" cannot be reached right now; try again later'
    [spec] = resource_specs(conn, [types.Resource(uri="note://alpha", name="alpha")]).values()
    with pytest.raises(ToolError, match=down):
        await spec.reader(spec.uri, ctx)
    prompt = to_spec(conn, types.Prompt(name="review"))
    with pytest.raises(ToolError, match=down):
        await prompt.getter({}, ctx)
