"""Everything the gateway can offer: tools, resources, resource templates and prompts, by name.

Tools and templates are fixed once loaded, but for an upstream's, which
are swapped in one step when it is re-read (`replace_namespace`). The
gateway's own prompt (`access-policy`) is not an entry here; upstreams'
prompts are. Resources are of two kinds:
fixed ones (`ResourceSpec` returned by a module's `load`) and listed ones
(`ResourceListing`, e.g. the workspace files), which change while the
server runs. `resources` is a snapshot taken at load time;
`list_resources()` asks the listings again and is what resources/list
should call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mcp_acl.gateway.specs import (
    PromptSpec,
    ResourceListing,
    ResourceReader,
    ResourceSpec,
    ResourceTemplateSpec,
    ToolSpec,
    upstream_uri,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamespaceEntries:
    """What one upstream adds: tools and prompts named NAME.*, resources and templates under upstream://NAME/."""

    tools: dict[str, ToolSpec] = field(default_factory=dict)
    resources: dict[str, ResourceSpec] = field(default_factory=dict)
    templates: tuple[ResourceTemplateSpec, ...] = ()
    prompts: dict[str, PromptSpec] = field(default_factory=dict)

    def summary(self) -> str:
        """E.g. `3 tools, 2 resources, 1 template, 1 prompt` (for the log)."""
        counts = (len(self.tools), "tool"), (len(self.resources), "resource"), (len(self.templates), "template"), (len(self.prompts), "prompt")
        return ", ".join(f"{n} {what}{'' if n == 1 else 's'}" for n, what in counts)


@dataclass(frozen=True)
class Catalogue:
    """The loaded tools, resources, templates and (upstreams') prompts."""

    tools: dict[str, ToolSpec] = field(default_factory=dict)
    # Fixed resources plus what the listings held when the catalogue was built.
    resources: dict[str, ResourceSpec] = field(default_factory=dict)
    templates: list[ResourceTemplateSpec] = field(default_factory=list)
    # Fixed resources only; kept apart so a fresh listing can be merged in.
    fixed_resources: dict[str, ResourceSpec] = field(default_factory=dict)
    listings: tuple[ResourceListing, ...] = ()
    prompts: dict[str, PromptSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Built by hand (e.g. in a test) with `resources` only: they are all fixed.
        if not self.fixed_resources and not self.listings and self.resources:
            object.__setattr__(self, "fixed_resources", dict(self.resources))

    @classmethod
    def build(
        cls,
        tools: dict[str, ToolSpec],
        fixed_resources: dict[str, ResourceSpec],
        templates: list[ResourceTemplateSpec],
        listings: tuple[ResourceListing, ...] = (),
    ) -> Catalogue:
        """A catalogue with its resource snapshot taken now."""
        base = cls(tools=tools, templates=templates, fixed_resources=fixed_resources, listings=listings)
        return cls(
            tools=tools, resources=base.list_resources(), templates=templates,
            fixed_resources=fixed_resources, listings=listings,
        )

    def replace_namespace(self, namespace: str, entries: NamespaceEntries) -> None:
        """Make `entries` all that `namespace` offers (an upstream read at start or re-read while serving).

        New dicts replace the old ones, each in one step: a request or a
        listing in another thread sees an old entry or a new one, never a
        half-built dict.
        """
        prefix, uris = f"{namespace}.", upstream_uri(namespace)
        tools = {name: spec for name, spec in self.tools.items() if not name.startswith(prefix)}
        tools.update(entries.tools)
        prompts = {name: spec for name, spec in self.prompts.items() if not name.startswith(prefix)}
        prompts.update(entries.prompts)
        templates = [spec for spec in self.templates if not spec.uri_template.startswith(uris)]
        templates.extend(entries.templates)
        fixed = {uri: spec for uri, spec in self.fixed_resources.items() if not uri.startswith(uris)}
        fixed.update(entries.resources)
        resources = {uri: spec for uri, spec in self.resources.items() if not uri.startswith(uris)}
        resources.update(entries.resources)
        for name, value in (("tools", tools), ("prompts", prompts), ("templates", templates), ("fixed_resources", fixed), ("resources", resources)):
            object.__setattr__(self, name, value)

    def tool(self, name: str) -> ToolSpec | None:
        """The tool called `name`, or None."""
        return self.tools.get(name)

    def prompt(self, name: str) -> PromptSpec | None:
        """The (upstream's) prompt called `name`, or None."""
        return self.prompts.get(name)

    def list_resources(self) -> dict[str, ResourceSpec]:
        """The resources as they are now: fixed ones, then each listing's, by URI.

        A listing that fails is logged and contributes nothing (a listing
        only hides; reading is still decided and confined per URI).
        """
        found = dict(self.fixed_resources)
        for listing in self.listings:
            try:
                for spec in listing.list_resources():
                    found.setdefault(spec.uri, spec)
            except Exception:
                log.exception("resource listing %r failed", listing.name)
        return found

    def resource(self, uri: str) -> ResourceSpec | ResourceTemplateSpec | None:
        """What serves `uri` (its reader and MIME type): a concrete resource first, then the first template that matches."""
        spec = self.fixed_resources.get(uri) or self.resources.get(uri)
        if spec is not None:
            return spec
        for template in self.templates:
            try:
                matched = template.matches(uri)
            except Exception:
                log.exception("template %r failed to match %r", template.uri_template, uri)
                matched = False
            if matched:
                return template
        return self.list_resources().get(uri) if self.listings else None

    def resource_reader(self, uri: str) -> ResourceReader | None:
        """The reader for `uri` (see `resource`), or None."""
        found = self.resource(uri)
        return found.reader if found is not None else None
