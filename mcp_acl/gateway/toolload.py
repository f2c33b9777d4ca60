"""Loading tool modules by path into a Catalogue.

Each `*.py` file in a tool directory (names starting with `_` are skipped,
so a directory may keep private helpers) is imported under a private
module name (`mcp_acl_tools_<stem>`, never a top-level `tools` package)
and its `load(config)` is called. Anything wrong (no `load`, an import
error, a bad spec, two tools with one name) raises ToolLoadError naming the
file: the server refuses to start rather than run half-loaded.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from mcp_acl._bundled import bundled_dir
from mcp_acl.gateway.catalogue import Catalogue
from mcp_acl.gateway.slots import DEFAULT_SLOTS, DEFAULT_WAIT_SECONDS, ToolSlots
from mcp_acl.gateway.specs import (
    DEFAULT_SQL_TIMEOUT_SECONDS,
    ResourceListing,
    ResourceSpec,
    ResourceTemplateSpec,
    ToolConfig,
    ToolSpec,
)
from mcp_acl.policy import PolicyError, parse_target


class ToolLoadError(RuntimeError):
    """A tool module or a tool setting could not be loaded; the message names the file or the variable."""


def tool_config_from_env(home: Path) -> ToolConfig:
    """`MCP_ACL_FILES_ROOT` (default `<home>/workspace`), `MCP_ACL_SQL_URL` (default `sqlite:///<home>/shop.db`)
    and `MCP_ACL_SQL_TIMEOUT` seconds (default 10)."""
    root = os.environ.get("MCP_ACL_FILES_ROOT")
    url = os.environ.get("MCP_ACL_SQL_URL")
    return ToolConfig(
        files_root=Path(root).expanduser() if root else Path(home) / "workspace",
        sql_url=url or f"sqlite:///{Path(home) / 'shop.db'}",
        sql_timeout_seconds=_seconds_from_env("MCP_ACL_SQL_TIMEOUT", DEFAULT_SQL_TIMEOUT_SECONDS, above_zero=True),
    )


def tool_slots_from_env() -> ToolSlots:
    """`MCP_ACL_TOOL_THREADS` slots (default 20), waited for up to `MCP_ACL_TOOL_WAIT` seconds (default 30)."""
    raw = os.environ.get("MCP_ACL_TOOL_THREADS", "").strip()
    try:
        size = int(raw) if raw else DEFAULT_SLOTS
    except ValueError:
        size = 0
    if size < 1:
        raise ToolLoadError(f"MCP_ACL_TOOL_THREADS must be a whole number from 1 up, e.g. {DEFAULT_SLOTS}, not {raw!r}")
    return ToolSlots(size, _seconds_from_env("MCP_ACL_TOOL_WAIT", DEFAULT_WAIT_SECONDS, above_zero=False))


def _seconds_from_env(name: str, default: float, *, above_zero: bool) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or (above_zero and seconds == 0):
        least = "above 0" if above_zero else "0 or more"
        raise ToolLoadError(f"{name} must be a number of seconds {least}, e.g. {default:g}, not {raw!r}")
    return seconds


def builtin_tools_dir() -> Path:
    """The built-in tools: inside an installed wheel (`mcp_acl/_tools`), or `tools/` in the source tree."""
    return bundled_dir("tools", "files.py")


def _module_name(index: int, path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem)
    return f"mcp_acl_tools_{stem}" if index == 0 else f"mcp_acl_tools_{index}_{stem}"


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ToolLoadError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as dataclasses and pickling look modules up here.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ToolLoadError(f"{path}: failed to import: {exc.__class__.__name__}: {exc}") from exc
    return module


def _check_name(path: Path, kind: str, name: object) -> None:
    if not isinstance(name, str):
        raise ToolLoadError(f"{path}: a {kind} name must be text, not {name!r}")
    try:
        parse_target(f"{kind}:{name}")
    except PolicyError as exc:
        raise ToolLoadError(f"{path}: {kind} {name!r} cannot be named in a grant: {exc}") from exc


class _Collector:
    """Gathers the specs of all modules, refusing duplicates."""

    def __init__(self) -> None:
        self.tools: dict[str, ToolSpec] = {}
        self.resources: dict[str, ResourceSpec] = {}
        self.templates: list[ResourceTemplateSpec] = []
        self.listings: list[ResourceListing] = []
        self._origin: dict[str, Path] = {}

    def _claim(self, path: Path, key: str, what: str) -> None:
        if key in self._origin:
            raise ToolLoadError(f"{path}: {what} is already defined by {self._origin[key]}")
        self._origin[key] = path

    def add(self, path: Path, spec: object) -> None:
        if isinstance(spec, ToolSpec):
            _check_name(path, "tool", spec.name)
            if not callable(spec.handler):
                raise ToolLoadError(f"{path}: tool {spec.name!r} has no callable handler")
            schema = spec.input_schema
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise ToolLoadError(f"{path}: tool {spec.name!r} needs an input schema of type object")
            self._claim(path, f"tool:{spec.name}", f"tool {spec.name!r}")
            self.tools[spec.name] = spec
        elif isinstance(spec, ResourceSpec):
            _check_name(path, "resource", spec.uri)
            if not callable(spec.reader):
                raise ToolLoadError(f"{path}: resource {spec.uri!r} has no callable reader")
            self._claim(path, f"resource:{spec.uri}", f"resource {spec.uri!r}")
            self.resources[spec.uri] = spec
        elif isinstance(spec, ResourceTemplateSpec):
            if not (callable(spec.reader) and callable(spec.matches)):
                raise ToolLoadError(f"{path}: template {spec.uri_template!r} needs a callable reader and matches")
            self._claim(path, f"template:{spec.uri_template}", f"resource template {spec.uri_template!r}")
            self.templates.append(spec)
        elif isinstance(spec, ResourceListing):
            if not callable(spec.list_resources):
                raise ToolLoadError(f"{path}: resource listing {spec.name!r} is not callable")
            self.listings.append(spec)
        else:
            raise ToolLoadError(
                f"{path}: load() returned {type(spec).__name__}; expected ToolSpec, ResourceSpec, "
                "ResourceTemplateSpec or ResourceListing"
            )


def load_tool_modules(dirs: Sequence[Path], config: ToolConfig) -> Catalogue:
    """Load every tool module in `dirs` (in order, files by name) into one Catalogue."""
    found = _Collector()
    for index, folder in enumerate(dirs):
        folder = Path(folder)
        if not folder.is_dir():
            raise ToolLoadError(f"{folder}: tool directory does not exist")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            module = _import(_module_name(index, path), path)
            load = getattr(module, "load", None)
            if not callable(load):
                raise ToolLoadError(f"{path}: defines no load(config) function")
            try:
                specs = list(load(config))
            except ToolLoadError:
                raise
            except Exception as exc:
                raise ToolLoadError(f"{path}: load() failed: {exc.__class__.__name__}: {exc}") from exc
            for spec in specs:
                found.add(path, spec)
    return Catalogue.build(found.tools, found.resources, found.templates, tuple(found.listings))
