"""Built-in file tools: list, read, search and write inside one workspace folder.

Every path is relative to `config.files_root` and confined to it (see
mcp_acl/gateway/confined.py): `..`, absolute paths, NUL, symbolic links and
files with more than one hard link are refused with a sentence the model
can act on. Files are also offered as resources `file:///<relative path>`,
listed afresh each time.
"""

from __future__ import annotations

import codecs
from typing import Any
from urllib.parse import quote, unquote

from mcp_acl.gateway.confined import ConfinedRoot, show, split_relative
from mcp_acl.gateway.specs import (
    CallContext,
    ResourceListing,
    ResourceSpec,
    ResourceTemplateSpec,
    ToolConfig,
    ToolError,
    ToolSpec,
)

MAX_READ_BYTES = 256 * 1024
MAX_WRITE_BYTES = 1024 * 1024
MAX_LIST_ENTRIES = 500
MAX_SEARCH_MATCHES = 100
MAX_SEARCH_FILES = 2000
MAX_RESOURCES = 500
URI_PREFIX = "file:///"

_PATH = {"type": "string", "description": "A path relative to the workspace, with / between folders, e.g. reports/q3.md."}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def uri_for(parts: tuple[str, ...]) -> str:
    """The resource URI of a relative path, e.g. ('reports', 'q 3.md') → file:///reports/q%203.md."""
    return URI_PREFIX + quote("/".join(parts), safe="/")


def parts_of_uri(uri: str) -> tuple[str, ...] | None:
    """The path a `file:///` URI names, or None unless the URI is in the one canonical form."""
    if not isinstance(uri, str) or not uri.startswith(URI_PREFIX):
        return None
    try:
        parts = split_relative(unquote(uri[len(URI_PREFIX):], errors="strict"))
    except (ToolError, UnicodeDecodeError):
        return None
    # Only the canonical spelling: a grant on `file:///reports/*` must not be
    # dodged by `file:///reports/./x` or by percent-encoding letters.
    if not parts or uri_for(parts) != uri:
        return None
    return parts


def _text(data: bytes, complete: bool, where: str) -> str:
    if b"\x00" in data:
        raise ToolError(f"{where} is not a text file")
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
    except UnicodeDecodeError as exc:
        raise ToolError(f"{where} is not UTF-8 text") from exc


class Workspace:
    """The file tools bound to one root folder."""

    def __init__(self, config: ToolConfig) -> None:
        self.root = ConfinedRoot(config.files_root)

    def read_text(self, parts: tuple[str, ...]) -> str:
        """A text file's content, cut at MAX_READ_BYTES with a note saying so."""
        data, size = self.root.read_bytes(parts, MAX_READ_BYTES)
        text = _text(data, size <= MAX_READ_BYTES, show(parts))
        if size > MAX_READ_BYTES:
            text += f"\n[cut: {show(parts)} has {size} bytes; only the first {MAX_READ_BYTES} are shown]"
        return text

    def list(self, args: dict[str, Any], ctx: CallContext) -> str:
        """files.list"""
        parts = split_relative(args.get("path", ""))
        entries = self.root.entries(parts)
        if not entries:
            return f"{show(parts)}: empty folder"
        lines = [f"{show(parts)}:"]
        for name, is_dir, size in entries[:MAX_LIST_ENTRIES]:
            lines.append(f"  {name}/" if is_dir else f"  {name}  ({size} bytes)")
        if len(entries) > MAX_LIST_ENTRIES:
            lines.append(f"[{len(entries) - MAX_LIST_ENTRIES} more entries not shown]")
        return "\n".join(lines)

    def read(self, args: dict[str, Any], ctx: CallContext) -> str:
        """files.read"""
        return self.read_text(split_relative(args.get("path")))

    def search(self, args: dict[str, Any], ctx: CallContext) -> str:
        """files.search"""
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("the query must be some text to look for")
        parts = split_relative(args.get("path", ""))
        needle = query.casefold()
        matches: list[str] = []
        single = self.root.is_file(parts)
        files = [parts] if single else self.root.walk_files(parts, MAX_SEARCH_FILES)
        for path in files:
            try:
                data, size = self.root.read_bytes(path, MAX_READ_BYTES)
                text = _text(data, size <= MAX_READ_BYTES, show(path))
            except ToolError:
                if single:
                    raise  # the one file asked for: say why it cannot be searched
                continue  # binary, unreadable, hard-linked or gone: not a match
            for number, line in enumerate(text.splitlines(), 1):
                if needle in line.casefold():
                    matches.append(f"{show(path)}:{number}: {line.strip()[:200]}")
                    if len(matches) >= MAX_SEARCH_MATCHES:
                        matches.append(f"[stopped after {MAX_SEARCH_MATCHES} matches: narrow the path or the query]")
                        return "\n".join(matches)
        return "\n".join(matches) if matches else f"no line under {show(parts)} contains {query!r}"

    def write(self, args: dict[str, Any], ctx: CallContext) -> str:
        """files.write"""
        parts = split_relative(args.get("path"))
        content = args.get("content")
        if not isinstance(content, str):
            raise ToolError("the content must be text")
        data = content.encode("utf-8")
        if len(data) > MAX_WRITE_BYTES:
            raise ToolError(f"the content has {len(data)} bytes; at most {MAX_WRITE_BYTES} may be written at once")
        self.root.write_bytes(parts, data)
        return f"wrote {len(data)} bytes to {show(parts)}"

    def read_resource(self, uri: str, ctx: CallContext) -> str:
        """The reader behind every `file:///` resource."""
        parts = parts_of_uri(uri)
        if parts is None:
            raise ToolError(f"{uri} is not a file resource of this workspace")
        return self.read_text(parts)

    def resources(self) -> list[ResourceSpec]:
        """Every file in the workspace as a resource (at most MAX_RESOURCES)."""
        if not self.root.exists():
            return []
        return [
            ResourceSpec(uri=uri_for(parts), name=show(parts), reader=self.read_resource, mime_type=_mime(parts[-1]))
            for parts in self.root.walk_files((), MAX_RESOURCES)
        ]


def _mime(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"md": "text/markdown", "csv": "text/csv", "json": "application/json"}.get(suffix, "text/plain")


def load(config: ToolConfig) -> list:
    """The file tools, the file resources and the `file:///{path}` template."""
    ws = Workspace(config)
    optional_path = dict(_PATH, description=_PATH["description"] + " Leave out for the whole workspace.")
    return [
        ToolSpec(
            name="files.list", title="List a folder",
            description="List the files and folders in a workspace folder, with file sizes.",
            input_schema=_schema({"path": optional_path}, []),
            handler=ws.list,
        ),
        ToolSpec(
            name="files.read", title="Read a file",
            description=f"Read a UTF-8 text file from the workspace (the first {MAX_READ_BYTES // 1024} KiB).",
            input_schema=_schema({"path": _PATH}, ["path"]),
            handler=ws.read,
        ),
        ToolSpec(
            name="files.search", title="Search files",
            description=(
                "Find lines containing some text (case-insensitive) in the workspace's text files; "
                f"answers `path:line: text`, at most {MAX_SEARCH_MATCHES} lines."
            ),
            input_schema=_schema(
                {"query": {"type": "string", "description": "The text to look for."}, "path": optional_path}, ["query"]
            ),
            handler=ws.search,
        ),
        ToolSpec(
            name="files.write", title="Write a file",
            description="Create or replace a UTF-8 text file in the workspace; missing folders are created.",
            input_schema=_schema(
                {"path": _PATH, "content": {"type": "string", "description": "The whole new content of the file."}},
                ["path", "content"],
            ),
            handler=ws.write,
        ),
        ResourceListing(name="files", list_resources=ws.resources),
        ResourceTemplateSpec(
            uri_template=URI_PREFIX + "{path}", name="workspace file",
            description="Any text file in the workspace, by its relative path.",
            reader=ws.read_resource,
            matches=lambda uri: parts_of_uri(uri) is not None,
        ),
    ]
