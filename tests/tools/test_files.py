"""The built-in file tools stay inside their root and do what they say there."""

from __future__ import annotations

import os

import pytest

from mcp_acl.gateway.confined import split_relative
from mcp_acl.gateway.specs import CallContext, ToolConfig, ToolError
from mcp_acl.gateway.toolload import builtin_tools_dir, load_tool_modules
from mcp_acl.policy import Identity

CTX = CallContext(identity=Identity("alice"))


@pytest.fixture
def root(tmp_path):
    ws = tmp_path / "ws"
    (ws / "reports").mkdir(parents=True)
    (ws / "reports" / "q1.md").write_text("# Q1\nrevenue grew\n")
    (ws / "notes").mkdir()
    (ws / "notes" / "todo.md").write_text("call Bob\nRevenue review\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the secret\n")
    os.symlink(outside / "secret.txt", ws / "reports" / "leak.txt")
    os.symlink(outside, ws / "linkdir")
    return ws


@pytest.fixture
def catalogue(root, tmp_path):
    return load_tool_modules([builtin_tools_dir()], ToolConfig(files_root=root, sql_url=f"sqlite:///{tmp_path / 'x.db'}"))


def test_read_inside_the_root_returns_the_text(tools):
    assert tools("files.read", path="reports/q1.md") == "# Q1\nrevenue grew\n"


def test_write_creates_missing_folders_inside_the_root(tools, root):
    assert tools("files.write", path="drafts/2026/plan.md", content="plan") == "wrote 4 bytes to drafts/2026/plan.md"
    assert (root / "drafts" / "2026" / "plan.md").read_text() == "plan"


def test_write_replaces_an_existing_file(tools, root):
    tools("files.write", path="notes/todo.md", content="done")
    assert (root / "notes" / "todo.md").read_text() == "done"


ESCAPE = "reports/../../outside/secret.txt"


@pytest.mark.parametrize(
    "tool, args",
    [
        ("files.read", {"path": ESCAPE}),
        ("files.list", {"path": ESCAPE}),
        ("files.write", {"path": ESCAPE, "content": "x"}),
        ("files.search", {"path": ESCAPE, "query": "secret"}),
    ],
)
def test_dotdot_is_refused_by_every_tool(tools, tool, args):
    assert "'..' is refused" in tools.refused(tool, **args)


def test_absolute_path_is_refused(tools, tmp_path):
    assert "absolute paths are refused" in tools.refused("files.read", path=str(tmp_path / "outside" / "secret.txt"))


def test_nul_in_path_is_refused(tools):
    assert "NUL" in tools.refused("files.read", path="reports/q1.md\x00.txt")


def test_symlinked_file_pointing_out_is_refused(tools):
    assert tools.refused("files.read", path="reports/leak.txt") == "reports/leak.txt is a symbolic link; links are not followed"


def test_symlinked_folder_pointing_out_is_refused_for_reading_and_listing(tools):
    assert "linkdir is a symbolic link" in tools.refused("files.read", path="linkdir/secret.txt")
    assert "linkdir is a symbolic link" in tools.refused("files.list", path="linkdir")


def test_write_through_a_symlinked_folder_is_refused_and_writes_nothing_outside(tools, tmp_path):
    assert "linkdir is a symbolic link" in tools.refused("files.write", path="linkdir/new.txt", content="x")
    assert sorted(p.name for p in (tmp_path / "outside").iterdir()) == ["secret.txt"]


def test_write_over_a_symlink_is_refused_and_its_target_unchanged(tools, tmp_path):
    assert "symbolic link" in tools.refused("files.write", path="reports/leak.txt", content="overwritten")
    assert (tmp_path / "outside" / "secret.txt").read_text() == "the secret\n"


def test_list_shows_files_and_folders_but_not_links(tools):
    listing = tools("files.list")
    assert listing == ".:\n  notes/\n  reports/"
    assert "leak.txt" not in tools("files.list", path="reports")


def test_search_answers_file_and_line_ignoring_case(tools):
    assert tools("files.search", query="REVENUE") == "notes/todo.md:2: Revenue review\nreports/q1.md:2: revenue grew"


def test_search_limited_to_a_folder_stays_there(tools):
    assert tools("files.search", query="revenue", path="reports") == "reports/q1.md:2: revenue grew"


def test_search_never_enters_symlinked_folders(tools):
    assert tools("files.search", query="secret") == "no line under . contains 'secret'"


def test_search_stops_at_its_cap(tools, root):
    (root / "many.txt").write_text("hit\n" * 500)
    lines = tools("files.search", query="hit").splitlines()
    assert len(lines) == 101
    assert lines[-1].startswith("[stopped after 100 matches")


def test_read_of_a_large_file_is_cut_with_a_note(tools, root):
    (root / "big.txt").write_text("a" * 300_000)
    text = tools("files.read", path="big.txt")
    assert text.startswith("a" * 1000)
    assert text.endswith("[cut: big.txt has 300000 bytes; only the first 262144 are shown]")


def test_binary_file_is_refused(tools, root):
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    assert tools.refused("files.read", path="blob.bin") == "blob.bin is not a text file"


def test_missing_file_is_named_relative_to_the_root(tools):
    assert tools.refused("files.read", path="reports/q9.md") == "reports/q9.md does not exist"


def test_missing_root_gives_a_clear_error(tmp_path):
    cat = load_tool_modules([builtin_tools_dir()], ToolConfig(files_root=tmp_path / "nope", sql_url="sqlite:///x.db"))
    with pytest.raises(ToolError, match="workspace folder is missing"):
        cat.tool("files.list").handler({}, CTX)
    assert cat.list_resources() == {}


def test_every_file_is_a_resource_and_new_files_appear_on_the_next_listing(tools, catalogue):
    assert sorted(catalogue.list_resources()) == ["file:///notes/todo.md", "file:///reports/q1.md"]
    tools("files.write", path="reports/q 2.md", content="q2")
    assert "file:///reports/q%202.md" in catalogue.list_resources()
    reader = catalogue.resource_reader("file:///reports/q%202.md")
    assert reader("file:///reports/q%202.md", CTX) == "q2"


def test_template_matches_only_safe_canonical_uris(catalogue):
    (template,) = catalogue.templates
    assert template.uri_template == "file:///{path}"
    assert template.matches("file:///reports/q1.md")
    assert template.matches("file:///reports/not-yet-there.md")
    for uri in (
        "file:///reports/../hr/salaries.csv",
        "file:///reports/%2e%2e/hr/salaries.csv",
        "file:///%2Fetc/passwd",
        "file:////etc/passwd",
        "file:///reports/./q1.md",
        "file:///rep%6frts/q1.md",
        "file:///reports/q1.md%00",
        "http://example.com/x",
    ):
        assert not template.matches(uri), uri


def test_resource_reader_is_confined_like_the_tools(catalogue):
    (template,) = catalogue.templates
    with pytest.raises(ToolError):
        template.reader("file:///reports/../../outside/secret.txt", CTX)
    with pytest.raises(ToolError, match="symbolic link"):
        template.reader("file:///reports/leak.txt", CTX)


@pytest.mark.parametrize("path", ["./hr/salaries.csv", "hr//salaries.csv", "hr/./salaries.csv", ".", "./"])
def test_a_path_not_written_plainly_is_refused_so_conditions_see_what_opens(path):
    # A deny on args.path.startsWith("hr/") must not be stepped round by "./hr/...".
    with pytest.raises(ToolError, match="write the path plainly"):
        split_relative(path)


def test_plain_paths_and_one_trailing_slash_are_accepted():
    assert split_relative("hr/salaries.csv") == ("hr", "salaries.csv")
    assert split_relative("reports/") == ("reports",)
    assert split_relative("") == ()


# -- hard links: a second name inside the root for a file outside it


@pytest.fixture
def planted(root, tmp_path):
    """reports/planted.txt: a hard link to outside/secret.txt."""
    os.link(tmp_path / "outside" / "secret.txt", root / "reports" / "planted.txt")
    return "reports/planted.txt"


def test_hard_linked_file_pointing_out_is_refused_for_reading(tools, planted):
    assert tools.refused("files.read", path=planted) == (
        "reports/planted.txt has more than one hard link, so it may be a file outside the workspace; it is not used"
    )


def test_hard_linked_file_is_refused_as_a_resource(catalogue, planted):
    (template,) = catalogue.templates
    with pytest.raises(ToolError, match="more than one hard link"):
        template.reader("file:///reports/planted.txt", CTX)


def test_hard_linked_file_is_left_out_of_listings_searches_and_resources(tools, catalogue, planted):
    assert tools("files.list", path="reports") == "reports:\n  q1.md  (18 bytes)"
    assert tools("files.search", query="secret") == "no line under . contains 'secret'"
    assert "file:///reports/planted.txt" not in catalogue.list_resources()


def test_searching_a_hard_linked_file_by_name_says_why_it_is_refused(tools, planted):
    assert "more than one hard link" in tools.refused("files.search", query="secret", path=planted)


def test_write_over_a_hard_linked_file_is_refused_and_both_names_unchanged(tools, root, tmp_path, planted):
    assert "more than one hard link" in tools.refused("files.write", path=planted, content="overwritten")
    assert (tmp_path / "outside" / "secret.txt").read_text() == "the secret\n"
    assert (root / "reports" / "planted.txt").read_text() == "the secret\n"


def test_a_hard_link_made_after_a_path_check_is_still_refused_when_opened(catalogue, root, tmp_path):
    # The link appears between is_file() (a path stat) and the open: the
    # refusal comes from fstat on the descriptor, not from the earlier look.
    confined = catalogue.tool("files.read").handler.__self__.root
    assert not confined.is_file(("reports", "late.txt"))
    os.link(tmp_path / "outside" / "secret.txt", root / "reports" / "late.txt")
    with pytest.raises(ToolError, match="more than one hard link"):
        confined.read_bytes(("reports", "late.txt"), 100)
