"""A candidate policy: a policy file compiled as a whole policy, to replay or shadow.

The candidate stands in for everything stored: its grants, its users'
roles and disabled flags, and its clients' restricted flags. A user or
client it does not name has no roles and is not restricted, exactly as if
the file had been imported into an empty database. Write one with
`mcp-acl policy export` and edit it.

Its grants are numbered from 1 in file order (ids decide ties, and an
import keeps that order); `label` names a grant by its place in the file,
`grants[0]`, as the file's own error messages do, after its number in the
candidate's reasons (`#1`).
"""

from __future__ import annotations

from mcp_acl.policy import CompiledPolicy, Grant, PolicyError, compile_policy
from mcp_acl.policy.compiled import ClientInfo
from mcp_acl.store._yaml_fields import FileError
from mcp_acl.store.portable import PolicyDocument, parse_document


def compile_document(doc: PolicyDocument) -> CompiledPolicy:
    """The document as a compiled policy (revision 0); FileError for a grant that does not compile
    or a principal the file does not list."""
    _require_listed(doc)
    grants = [
        Grant(id=i + 1, principal=g.principal, effect=g.effect, target=g.target, condition=g.when,
              expires_at=g.expires, note=g.note)
        for i, g in enumerate(doc.grants)
    ]
    try:
        return compile_policy(
            0, grants,
            memberships={u.name: u.roles for u in doc.users},
            clients=[ClientInfo(c.client_id, c.restricted) for c in doc.clients],
            disabled_users=[u.name for u in doc.users if u.disabled],
        )
    except PolicyError as exc:
        # compile_policy names the grant by id; the file names it by place.
        raise FileError(f"grants: {exc}") from None


def _require_listed(doc: PolicyDocument) -> None:
    # As an import into an empty database would: a grant to a name the file does not list
    # (a typo, a user only the live store has) would otherwise decide for nobody, silently.
    listed = {"user": {u.name for u in doc.users}, "role": set(doc.roles), "client": {c.client_id for c in doc.clients}}
    for i, user in enumerate(doc.users):
        for role in user.roles:
            if role not in listed["role"]:
                raise FileError(f"users[{i}]: {_not_listed('role', role)}")
    for i, grant in enumerate(doc.grants):
        kind, _, name = grant.principal.partition(":")
        if name not in listed.get(kind, ()):
            raise FileError(f"grants[{i}]: {_not_listed(kind, name)}")


def _not_listed(kind: str, name: str) -> str:
    return f"{kind} {name!r} is not in the file; a candidate is the whole policy, so list it under {kind}s"


def load_candidate(text: str, source: str) -> CompiledPolicy:
    """Parse, validate and compile a candidate policy file; FileError names the first bad entry."""
    return compile_document(parse_document(text, source))


def label(grant: Grant | None) -> str | None:
    """A candidate grant by number and place in the file: `#3 grants[2]: deny role:intern tool:files.write`."""
    if grant is None:
        return None
    return f"#{grant.id} grants[{grant.id - 1}]: " + grant.describe().split(" ", 1)[1]
