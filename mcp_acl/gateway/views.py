"""What one identity may see of the catalogue at one policy revision.

The lists for tools/list, resources/list, resources/templates/list and
prompts/list are filtered with `visible()` and cached per (identity,
revision). A cached listing also carries the moment it goes stale on its
own: the earliest future expiry among the identity's grants, since an
expiring grant changes what is visible without a new revision.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import TYPE_CHECKING

import mcp_types as types

from mcp_acl.policy import CompiledPolicy, Identity, visible
from mcp_acl.policy.decide import limits
from mcp_acl.prompting import PROMPTS

if TYPE_CHECKING:
    from mcp_acl.gateway.catalogue import Catalogue

LIST_KINDS = ("tools", "resources", "prompts")
MAX_AGE = timedelta(seconds=10)


@dataclass(frozen=True)
class Listing:
    """The filtered catalogue for one identity at one revision."""

    revision: int
    tools: tuple[types.Tool, ...]
    resources: tuple[types.Resource, ...]
    templates: tuple[types.ResourceTemplate, ...]
    prompts: tuple[types.Prompt, ...]
    # When this listing must be rebuilt even at the same revision.
    stale_after: datetime | None = None

    def fingerprint(self, kind: str) -> tuple:
        """What a list_changed notification for `kind` is about (names, and tool descriptions with limits)."""
        if kind == "tools":
            return tuple((t.name, t.description) for t in self.tools)
        if kind == "resources":
            return tuple(r.uri for r in self.resources) + tuple(t.uri_template for t in self.templates)
        return tuple(p.name for p in self.prompts)

    def fresh(self, revision: int, now: datetime) -> bool:
        """True while this listing still answers for `revision` at `now`."""
        return revision == self.revision and (self.stale_after is None or now < self.stale_after)


def catalogue_identity(user: str | None, client: str | None, issuer: str, scope: str) -> Identity:
    """Whom `mcp-acl catalogue --user U --client C` and the console's "who can do what" show: a token of U through C."""
    return Identity(subject=user, client_id=client, issuer=issuer, scopes=frozenset({scope}))


def describe_with_limits(description: str, texts: Iterable[str]) -> str:
    """A tool description with the caller's limits appended, e.g. `… Limits: only reports/.`"""
    texts = [t.rstrip(".") for t in texts]
    if not texts:
        return description
    return f"{description.rstrip()}\n\nLimits for you: {'; '.join(texts)}."


def _next_expiry(policy: CompiledPolicy, identity: Identity, now: datetime) -> datetime | None:
    principals = []
    if identity.subject is not None:
        principals.append(f"user:{identity.subject}")
        principals.extend(f"role:{r}" for r in policy.roles_of(identity))
    if identity.client_id:
        principals.append(f"client:{identity.client_id}")
    soonest = None
    for principal in principals:
        for kind in ("tool", "resource", "prompt"):
            for cg in policy.grants_of(principal, kind):
                at = cg.grant.expires_at
                if at is not None and at > now and (soonest is None or at < soonest):
                    soonest = at
    return soonest


@dataclass(frozen=True)
class _PolicyPart:
    """Tools, templates and prompts: they change only with the policy (a revision or an expiry)."""

    revision: int
    tools: tuple[types.Tool, ...]
    templates: tuple[types.ResourceTemplate, ...]
    prompts: tuple[types.Prompt, ...]
    expiry: datetime | None

    def fresh(self, revision: int, now: datetime) -> bool:
        return revision == self.revision and (self.expiry is None or now < self.expiry)


class CatalogueViews:
    """Builds and caches `Listing`s; one instance serves every session of a process.

    The tools part (visibility of every tool, the limits of those shown) is
    kept until the revision moves or a grant expires; only the resource
    list, which follows the files, is rebuilt when a listing reaches MAX_AGE.
    """

    def __init__(self, catalogue: Catalogue, max_entries: int = 4096) -> None:
        self.catalogue = catalogue
        self.max_entries = max_entries
        self._listings: OrderedDict[Identity, Listing] = OrderedDict()
        self._parts: OrderedDict[Identity, _PolicyPart] = OrderedDict()
        self._lock = Lock()
        # Moves when the catalogue itself changes; a listing built before that is not cached.
        self._epoch = 0

    def forget(self) -> None:
        """Drop every cached listing: the catalogue changed (an upstream was re-read)."""
        with self._lock:
            self._epoch += 1
            self._listings.clear()
            self._parts.clear()

    def listing(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> Listing:
        """The listing of `identity` under `policy`, from the cache when still fresh."""
        cached = self._cached(self._listings, identity, policy.revision, now)
        if cached is not None:
            return cached
        epoch = self._epoch
        built = self._combine(self._part(policy, identity, now), self._resources(policy, identity, now), now)
        self._store(self._listings, identity, built, epoch)
        return built

    def cached(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> Listing | None:
        """The listing of `identity` under `policy` if the cache holds it fresh, else None (nothing is built)."""
        return self._cached(self._listings, identity, policy.revision, now)

    def tool_names(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> tuple[str, ...]:
        """The names tools/list shows `identity` now, in its order (without listing resources)."""
        return tuple(tool.name for tool in self._part(policy, identity, now).tools)

    def _part(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> _PolicyPart:
        part = self._cached(self._parts, identity, policy.revision, now)
        if part is None:
            epoch = self._epoch
            part = self._policy_part(policy, identity, now)
            self._store(self._parts, identity, part, epoch)
        return part

    def build(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> Listing:
        """Filter the whole catalogue for `identity` (uncached)."""
        return self._combine(self._policy_part(policy, identity, now), self._resources(policy, identity, now), now)

    def _cached(self, cache: OrderedDict, identity: Identity, revision: int, now: datetime):
        with self._lock:
            found = cache.get(identity)
            if found is not None and found.fresh(revision, now):
                cache.move_to_end(identity)
                return found
        return None

    def _store(self, cache: OrderedDict, identity: Identity, value, epoch: int) -> None:
        with self._lock:
            if epoch != self._epoch:
                return  # built from a catalogue that has since changed
            cache[identity] = value
            cache.move_to_end(identity)
            while len(cache) > self.max_entries:
                cache.popitem(last=False)

    @staticmethod
    def _combine(part: _PolicyPart, resources: tuple[types.Resource, ...], now: datetime) -> Listing:
        stale_after = now + MAX_AGE if part.expiry is None else min(part.expiry, now + MAX_AGE)
        return Listing(part.revision, part.tools, resources, part.templates, part.prompts, stale_after)

    def _policy_part(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> _PolicyPart:
        cat = self.catalogue
        tools = tuple(
            types.Tool(
                name=spec.name,
                title=spec.title,
                description=describe_with_limits(spec.description, limits(policy, identity, spec.target, now)),
                input_schema=spec.input_schema,
            )
            for spec in sorted(cat.tools.values(), key=lambda s: s.name)
            if visible(policy, identity, spec.target, now)
        )
        # A template is listed when a grant covers the template itself (e.g.
        # `resource:file:///*` covers `file:///{path}`); concrete URIs under
        # it are still decided one by one when read.
        templates = tuple(
            types.ResourceTemplate(
                uri_template=spec.uri_template, name=spec.name, description=spec.description, mime_type=spec.mime_type
            )
            for spec in sorted(cat.templates, key=lambda s: s.uri_template)
            if visible(policy, identity, f"resource:{spec.uri_template}", now)
        )
        prompts = tuple(
            types.Prompt(name=p.name, title=p.title, description=p.description)
            for p in PROMPTS
            if visible(policy, identity, p.target, now)
        ) + tuple(
            types.Prompt(name=spec.name, title=spec.title, description=spec.description, arguments=list(spec.arguments) or None)
            for spec in sorted(cat.prompts.values(), key=lambda s: s.name)
            if visible(policy, identity, spec.target, now)
        )
        return _PolicyPart(policy.revision, tools, templates, prompts, _next_expiry(policy, identity, now))

    def _resources(self, policy: CompiledPolicy, identity: Identity, now: datetime) -> tuple[types.Resource, ...]:
        return tuple(
            types.Resource(uri=spec.uri, name=spec.name, description=spec.description, mime_type=spec.mime_type)
            for spec in sorted(self.catalogue.list_resources().values(), key=lambda s: s.uri)
            if visible(policy, identity, spec.target, now)
        )
