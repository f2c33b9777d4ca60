"""Loading tool modules by path: the built-ins, your own, and refusing broken ones."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from mcp_acl.gateway.catalogue import Catalogue
from mcp_acl.gateway.specs import CallContext, ResourceSpec, ToolConfig
from mcp_acl.gateway.toolload import (
    ToolLoadError,
    builtin_tools_dir,
    load_tool_modules,
    tool_config_from_env,
    tool_slots_from_env,
)
from mcp_acl.policy import Identity

CTX = CallContext(identity=Identity("alice"))

GOOD = """
from mcp_acl.gateway.specs import ResourceSpec, ResourceTemplateSpec, ToolSpec

def load(config):
    return [
        ToolSpec(name="echo.say", description="Say it back.",
                 input_schema={"type": "object", "properties": {"text": {"type": "string"}},
                               "required": ["text"], "additionalProperties": False},
                 handler=lambda args, ctx: args["text"]),
        ResourceSpec(uri="memo://fixed", name="fixed", reader=lambda uri, ctx: "fixed text"),
        ResourceTemplateSpec(uri_template="memo://{name}", name="memo", reader=lambda uri, ctx: "from template",
                             matches=lambda uri: uri.startswith("memo://")),
    ]
"""


def module_dir(tmp_path: Path, name: str, **files: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for stem, source in files.items():
        (folder / f"{stem}.py").write_text(textwrap.dedent(source))
    return folder


@pytest.fixture
def config(tmp_path) -> ToolConfig:
    return ToolConfig(files_root=tmp_path, sql_url=f"sqlite:///{tmp_path / 'shop.db'}")


def test_builtin_tools_load_with_strict_schemas(config):
    cat = load_tool_modules([builtin_tools_dir()], config)
    assert sorted(cat.tools) == [
        "files.list", "files.read", "files.search", "files.write",
        "sql.describe", "sql.execute", "sql.select", "sql.tables",
    ]
    for spec in cat.tools.values():
        assert spec.description and spec.title
        assert spec.input_schema["type"] == "object"
        assert spec.input_schema["additionalProperties"] is False
        assert set(spec.input_schema["required"]) <= set(spec.input_schema["properties"])


def test_builtin_tools_folder_is_the_repository_tools_and_never_a_package(config):
    folder = builtin_tools_dir()
    assert folder == Path(__file__).resolve().parents[2] / "tools"
    assert not (folder / "__init__.py").exists()
    load_tool_modules([folder], config)
    assert "tools" not in sys.modules
    assert "mcp_acl_tools_files" in sys.modules


def test_own_module_adds_tools_resources_and_templates(tmp_path, config):
    cat = load_tool_modules([builtin_tools_dir(), module_dir(tmp_path, "mine", echo=GOOD)], config)
    assert cat.tool("echo.say").handler({"text": "hi"}, CTX) == "hi"
    assert cat.tool("nope") is None
    assert "memo://fixed" in cat.resources
    assert cat.resource_reader("memo://fixed")("memo://fixed", CTX) == "fixed text"
    assert cat.resource_reader("memo://other")("memo://other", CTX) == "from template"
    assert cat.resource_reader("unknown://x") is None


def test_listed_resources_are_asked_again_at_each_listing(tmp_path, config):
    source = """
    from mcp_acl.gateway.specs import ResourceListing, ResourceSpec
    SEEN = []

    def load(config):
        def listing():
            SEEN.append(1)
            return [ResourceSpec(uri=f"count://{len(SEEN)}", name="n", reader=lambda uri, ctx: uri)]
        return [ResourceListing(name="counter", list_resources=listing)]
    """
    cat = load_tool_modules([module_dir(tmp_path, "mine", counter=source)], config)
    assert list(cat.resources) == ["count://1"]
    assert list(cat.list_resources()) == ["count://2"]


def test_a_listed_resource_is_served_with_its_own_mime_type(tmp_path, config):
    # Reader and MIME type come from one lookup, so a listed resource that a
    # template also matches is served as the listing says.
    source = """
    from mcp_acl.gateway.specs import ResourceListing, ResourceSpec, ResourceTemplateSpec

    def load(config):
        listed = ResourceSpec(uri="doc://a.md", name="a", reader=lambda uri, ctx: "# A", mime_type="text/markdown")
        template = ResourceTemplateSpec(uri_template="doc://{name}", name="doc", reader=lambda uri, ctx: "other",
                                        matches=lambda uri: uri.startswith("doc://"), mime_type="text/plain")
        return [ResourceListing(name="docs", list_resources=lambda: [listed]), template]
    """
    cat = load_tool_modules([module_dir(tmp_path, "mine", docs=source)], config)
    found = cat.resource("doc://a.md")
    assert (found.mime_type, found.reader("doc://a.md", CTX)) == ("text/markdown", "# A")
    assert cat.resource("doc://b.md").mime_type == "text/plain"
    assert cat.resource("nothing://x") is None


def test_files_starting_with_underscore_are_skipped(tmp_path, config):
    folder = module_dir(tmp_path, "mine", _helpers="raise RuntimeError('must not be imported')", echo=GOOD)
    assert list(load_tool_modules([folder], config).tools) == ["echo.say"]


@pytest.mark.parametrize(
    "source, message",
    [
        ("X = 1\n", "defines no load(config) function"),
        ("def load(config:\n", "failed to import: SyntaxError"),
        ("raise ImportError('no such thing')\n", "failed to import: ImportError: no such thing"),
        ("def load(config):\n    raise KeyError('k')\n", "load() failed: KeyError"),
        ("def load(config):\n    return ['a string']\n", "load() returned str; expected ToolSpec"),
        (
            "from mcp_acl.gateway.specs import ToolSpec\n"
            "def load(config):\n    return [ToolSpec(name='bad name', description='', input_schema={'type': 'object'}, handler=print)]\n",
            "cannot be named in a grant",
        ),
        (
            "from mcp_acl.gateway.specs import ToolSpec\n"
            "def load(config):\n    return [ToolSpec(name='x.y', description='', input_schema={}, handler=print)]\n",
            "needs an input schema of type object",
        ),
    ],
)
def test_a_broken_module_stops_loading_naming_its_file(tmp_path, config, source, message):
    folder = module_dir(tmp_path, "mine", broken=source)
    with pytest.raises(ToolLoadError) as caught:
        load_tool_modules([folder], config)
    assert str(caught.value).startswith(f"{folder / 'broken.py'}: ")
    assert message in str(caught.value)


def test_a_duplicate_tool_name_names_both_files(tmp_path, config):
    first = module_dir(tmp_path, "one", echo=GOOD)
    second = module_dir(tmp_path, "two", again=GOOD)
    with pytest.raises(ToolLoadError) as caught:
        load_tool_modules([first, second], config)
    assert str(caught.value) == f"{second / 'again.py'}: tool 'echo.say' is already defined by {first / 'echo.py'}"


def test_a_missing_tool_directory_is_refused(tmp_path, config):
    with pytest.raises(ToolLoadError, match="tool directory does not exist"):
        load_tool_modules([tmp_path / "missing"], config)


def test_config_defaults_to_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MCP_ACL_FILES_ROOT", raising=False)
    monkeypatch.delenv("MCP_ACL_SQL_URL", raising=False)
    cfg = tool_config_from_env(tmp_path)
    assert cfg.files_root == tmp_path / "workspace"
    assert cfg.sql_url == f"sqlite:///{tmp_path / 'shop.db'}"


def test_config_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MCP_ACL_FILES_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MCP_ACL_SQL_URL", "postgresql+psycopg://shop@db/shop")
    cfg = tool_config_from_env(tmp_path)
    assert cfg.files_root == tmp_path / "elsewhere"
    assert cfg.sql_url == "postgresql+psycopg://shop@db/shop"


def test_sql_statements_get_ten_seconds_unless_configured(tmp_path, monkeypatch):
    monkeypatch.delenv("MCP_ACL_SQL_TIMEOUT", raising=False)
    assert tool_config_from_env(tmp_path).sql_timeout_seconds == 10
    monkeypatch.setenv("MCP_ACL_SQL_TIMEOUT", "2.5")
    assert tool_config_from_env(tmp_path).sql_timeout_seconds == 2.5


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan", "inf"])
def test_a_sql_timeout_that_is_not_a_positive_number_is_refused(tmp_path, monkeypatch, raw):
    monkeypatch.setenv("MCP_ACL_SQL_TIMEOUT", raw)
    with pytest.raises(ToolLoadError) as caught:
        tool_config_from_env(tmp_path)
    assert str(caught.value) == f"MCP_ACL_SQL_TIMEOUT must be a number of seconds above 0, e.g. 10, not {raw!r}"


def test_tool_slots_default_to_20_waited_for_30_seconds(monkeypatch):
    monkeypatch.delenv("MCP_ACL_TOOL_THREADS", raising=False)
    monkeypatch.delenv("MCP_ACL_TOOL_WAIT", raising=False)
    slots = tool_slots_from_env()
    assert (slots.size, slots.wait_seconds) == (20, 30)
    monkeypatch.setenv("MCP_ACL_TOOL_THREADS", "4")
    monkeypatch.setenv("MCP_ACL_TOOL_WAIT", "0")
    slots = tool_slots_from_env()
    assert (slots.size, slots.wait_seconds) == (4, 0)


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("MCP_ACL_TOOL_THREADS", "0", "MCP_ACL_TOOL_THREADS must be a whole number from 1 up, e.g. 20, not '0'"),
        ("MCP_ACL_TOOL_THREADS", "2.5", "MCP_ACL_TOOL_THREADS must be a whole number from 1 up, e.g. 20, not '2.5'"),
        ("MCP_ACL_TOOL_WAIT", "-1", "MCP_ACL_TOOL_WAIT must be a number of seconds 0 or more, e.g. 30, not '-1'"),
    ],
)
def test_tool_slot_settings_that_make_no_sense_are_refused(monkeypatch, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ToolLoadError) as caught:
        tool_slots_from_env()
    assert str(caught.value) == message


def test_the_example_module_in_the_docs_loads_and_runs(tmp_path, config):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "tools.md").read_text()
    source = doc.split("# ~/mcp-tools/clock.py\n", 1)[1].split("```", 1)[0]
    cat = load_tool_modules([module_dir(tmp_path, "mine", clock=source)], config)
    assert cat.tool("clock.now").handler({}, CTX).endswith("+00:00")


def test_a_catalogue_built_by_hand_lists_its_resources(config):
    spec = ResourceSpec(uri="memo://a", name="a", reader=lambda uri, ctx: "a")
    cat = Catalogue(tools={}, resources={"memo://a": spec}, templates=[])
    assert cat.list_resources() == {"memo://a": spec}
    assert cat.resource_reader("memo://a") is spec.reader
