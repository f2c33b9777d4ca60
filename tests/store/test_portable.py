"""Policy documents: strict validation, and an import that is one transaction."""

from __future__ import annotations

import doctest
from datetime import datetime, timezone

import pytest

import mcp_acl.store._yaml_fields
from mcp_acl.policy import Effect
from mcp_acl.store import PolicyAdmin
from mcp_acl.store._yaml_fields import FileError
from mcp_acl.store.portable import (
    ClientEntry,
    GrantEntry,
    PolicyDocument,
    UserEntry,
    dump_document,
    import_document,
    parse_document,
    read_document,
)

DOC = PolicyDocument(
    roles=("analyst",),
    users=(UserEntry("alice", ("analyst",)), UserEntry("mallory", (), disabled=True)),
    clients=(ClientEntry("agent", restricted=True, name="Report agent"),),
    grants=(
        GrantEntry("role:analyst", "tool:files.*", Effect.ALLOW, 'args.path.startsWith("reports/")', "reports: yes"),
        GrantEntry("client:agent", "tool:files.write", Effect.DENY, expires=datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)),
    ),
)


def test_yaml_field_examples_hold():
    result = doctest.testmod(mcp_acl.store._yaml_fields)
    assert result.attempted > 0 and result.failed == 0


def test_dump_then_parse_gives_the_same_document():
    assert parse_document(dump_document(DOC, revision=3)) == DOC


def test_unquoted_yaml_timestamp_is_read_as_utc():
    doc = parse_document("grants:\n  - {principal: user:a, target: tool:x, expires: 2030-01-02 03:04:00}\n")
    assert doc.grants[0].expires == datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc)


def test_effect_defaults_to_allow():
    assert parse_document("grants:\n  - {principal: user:a, target: tool:x}\n").grants[0].effect is Effect.ALLOW


def test_error_names_the_entry_and_the_condition_position():
    with pytest.raises(FileError, match=r"^grants\[1\]\.when: condition 'args\.\(' does not compile: at line 1, column 6"):
        parse_document("grants:\n  - {principal: user:a, target: tool:x}\n  - {principal: user:a, target: tool:y, when: 'args.('}\n")


def test_import_writes_everything_and_bumps_the_revision_once(engine):
    admin = PolicyAdmin(engine)
    before = admin.revision()
    assert import_document(admin, DOC) == before + 1
    read, revision = read_document(engine)
    assert (read, revision) == (DOC, before + 1)


def test_import_failing_late_writes_nothing(engine):
    admin = PolicyAdmin(engine)
    before = admin.revision()
    bad = PolicyDocument(DOC.roles, DOC.users, DOC.clients, (*DOC.grants, GrantEntry("user:nobody", "tool:x")))
    with pytest.raises(FileError, match=r"^grants\[2\]: user 'nobody' does not exist"):
        import_document(admin, bad)
    assert admin.revision() == before
    assert read_document(engine)[0] == PolicyDocument()


def test_parse_refuses_an_ill_typed_condition_naming_the_entry():
    with pytest.raises(FileError, match=r"^grants\[0\]\.when: condition 'args\.path\.startswith\(\"x\"\)': unknown method startswith \(did you mean startsWith\?\)$"):
        parse_document("grants:\n  - {principal: user:a, target: tool:x, effect: deny, when: 'args.path.startswith(\"x\")'}\n")


def test_import_of_an_ill_typed_condition_writes_nothing(engine):
    # Documents built in code skip parse_document; the store's own check still refuses.
    admin = PolicyAdmin(engine)
    before = admin.revision()
    bad = PolicyDocument(DOC.roles, DOC.users, DOC.clients, (*DOC.grants, GrantEntry("role:analyst", "tool:x", Effect.DENY, "args.path + 1")))
    with pytest.raises(FileError, match=r"^grants\[2\]: condition 'args\.path \+ 1': gives int, not a boolean$"):
        import_document(admin, bad)
    assert admin.revision() == before
    assert read_document(engine)[0] == PolicyDocument()


def test_a_grant_that_needs_approval_keeps_it_through_export_and_import(engine, tmp_path):
    # Dropping approval_by on the way would turn a held grant into a plain allow.
    from mcp_acl.store import PolicyAdmin, make_engine, upgrade
    from mcp_acl.store.portable import dump_document, import_document, parse_document, read_document

    admin = PolicyAdmin(engine)
    admin.add_role("analyst")
    admin.add_role("lead")
    admin.add_grant("role:analyst", "tool:sql.select", approval_by="role:lead")
    admin.add_grant("role:analyst", "tool:files.read", approval_by="admins")
    text = dump_document(read_document(engine)[0])
    assert "approval_by: role:lead" in text and "approval_by: admins" in text
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    try:
        import_document(PolicyAdmin(other), parse_document(text))
        assert [g.approval_by for g in PolicyAdmin(other).list_grants()] == ["role:lead", "admins"]
    finally:
        other.dispose()
