"""Principals and target patterns: parsing and glob matching."""

from __future__ import annotations

import pytest

from mcp_acl.policy import PolicyError, parse_principal, parse_target, parse_target_pattern
from mcp_acl.policy.names import Principal, target_problem


@pytest.mark.parametrize("kind", ["user", "role", "client"])
def test_each_principal_kind_parses(kind):
    assert parse_principal(f"{kind}:x-1") == Principal(kind, "x-1")


def test_principal_prints_as_it_was_written():
    assert str(parse_principal("client:agent@example")) == "client:agent@example"


def test_unknown_principal_kind_is_refused():
    with pytest.raises(PolicyError, match="unknown principal kind 'group'"):
        parse_principal("group:admins")


def test_principal_without_kind_is_refused():
    with pytest.raises(PolicyError, match="needs a kind"):
        parse_principal("alice")


def test_principal_with_empty_name_is_refused():
    with pytest.raises(PolicyError, match="empty name"):
        parse_principal("user:")


@pytest.mark.parametrize("text", ["user:al ice", "user:al\tice", "role:a\nb", "user:a\x00b", "user:a\u00a0b"])
def test_principal_with_white_space_or_control_characters_is_refused(text):
    with pytest.raises(PolicyError, match="white space or control"):
        parse_principal(text)


@pytest.mark.parametrize("text", ["role:*", "user:al?ce"])
def test_principal_with_wildcard_is_refused(text):
    with pytest.raises(PolicyError, match=r"may not contain \* or \?"):
        parse_principal(text)


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("tool:files.read", ("tool", "files.read")),
        ("resource:file:///reports/q3.md", ("resource", "file:///reports/q3.md")),
        ("prompt:summary", ("prompt", "summary")),
    ],
)
def test_each_target_kind_parses(text, parsed):
    assert parse_target(text) == parsed


def test_unknown_target_kind_is_refused():
    with pytest.raises(PolicyError, match="unknown target kind 'command'"):
        parse_target("command:rm")


def test_target_without_kind_is_refused():
    with pytest.raises(PolicyError, match="needs a kind"):
        parse_target("files.read")


def test_concrete_target_with_wildcard_is_refused():
    with pytest.raises(PolicyError, match="names a pattern"):
        parse_target("tool:files.*")


def test_target_with_control_characters_is_refused():
    with pytest.raises(PolicyError, match="white space or control"):
        parse_target("tool:files\nread")


def test_pattern_with_unknown_kind_is_refused():
    with pytest.raises(PolicyError, match="unknown target kind"):
        parse_target_pattern("tools:*")


def test_exact_pattern_matches_only_itself():
    pattern = parse_target_pattern("tool:files.read")
    assert pattern.exact
    assert pattern.matches("tool:files.read")
    assert not pattern.matches("tool:files.reader")
    assert not pattern.matches("tool:files.rea")


def test_star_matches_any_run_including_dots_and_slashes():
    pattern = parse_target_pattern("tool:files.*")
    assert pattern.matches("tool:files.read")
    assert pattern.matches("tool:files.admin.delete")
    assert pattern.matches("tool:files.")
    assert not pattern.matches("tool:filesXread")


def test_resource_glob_covers_uris_under_its_prefix():
    pattern = parse_target_pattern("resource:file:///reports/*")
    assert pattern.matches("resource:file:///reports/q3.md")
    assert pattern.matches("resource:file:///reports/2025/q3.md")
    assert not pattern.matches("resource:file:///secrets/keys")
    assert not pattern.matches("resource:file:///reports")


def test_star_in_the_middle_matches_any_run():
    pattern = parse_target_pattern("resource:db://*/orders")
    assert pattern.matches("resource:db://eu/orders")
    assert pattern.matches("resource:db://eu/west/orders")
    assert not pattern.matches("resource:db://eu/orders/1")


def test_question_mark_matches_exactly_one_character():
    pattern = parse_target_pattern("prompt:v?")
    assert pattern.matches("prompt:v1")
    assert pattern.matches("prompt:v/")
    assert not pattern.matches("prompt:v")
    assert not pattern.matches("prompt:v10")


@pytest.mark.parametrize(
    "glob, same, different",
    [
        ("tool:a.b", "tool:a.b", "tool:axb"),
        ("tool:a+b", "tool:a+b", "tool:aab"),
        ("tool:(x)|y*", "tool:(x)|yz", "tool:x"),
        ("tool:[ab]*", "tool:[ab]c", "tool:ac"),
        ("tool:^a$*", "tool:^a$b", "tool:ab"),
        ("tool:a\\d*", "tool:a\\dz", "tool:a1z"),
        ("tool:{1,2}?", "tool:{1,2}x", "tool:x"),
    ],
)
def test_regex_metacharacters_are_taken_literally(glob, same, different):
    pattern = parse_target_pattern(glob)
    assert pattern.matches(same)
    assert not pattern.matches(different)


def test_pattern_never_matches_another_kind():
    pattern = parse_target_pattern("tool:*")
    assert pattern.matches("tool:anything")
    assert not pattern.matches("prompt:anything")
    assert not pattern.matches("resource:tool:anything")


def test_matching_is_case_sensitive():
    assert not parse_target_pattern("tool:Files.*").matches("tool:files.read")



def test_target_problem_says_what_is_wrong_or_nothing():
    assert target_problem("tool:files.read") is None
    assert "unknown target kind" in target_problem("tools:x")
    assert "names a pattern" in target_problem("tool:*")
