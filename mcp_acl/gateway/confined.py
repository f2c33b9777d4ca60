"""File access that cannot leave one root folder.

Paths are relative, `/`-separated and walked one folder at a time from an
open handle on the root with O_NOFOLLOW, so `..`, absolute paths, NUL and
symbolic links (to anywhere, inside the root or out) are all refused, and
a link swapped in between a check and an open is refused too. Links are not
followed even when they point inside the root: a grant condition on the
path (`args.path.startsWith("reports/")`) must see where the file really is.
For the same reason a path has one spelling: `./`, `//` and `/./` are
refused, not tidied, since `./hr/salaries.csv` would open `hr/salaries.csv`
while a condition on `args.path` saw something else.

Hard links are refused too: a regular file with more than one link
(`st_nlink > 1`) may be a second name for a file outside the root, planted
by anyone who can write in the root, and no path check can tell. Reads
check the descriptor they opened (O_NOFOLLOW, then fstat), so a link made
between a check and the open cannot slip through; listings and walks
leave such files out, as they leave out symbolic links.

    >>> split_relative("reports/q3.md")
    ('reports', 'q3.md')
    >>> split_relative("reports/")
    ('reports',)
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcp_acl.gateway.specs import ToolError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_relative(text: object) -> tuple[str, ...]:
    """The segments of a safe relative path; ToolError for anything that could leave the root."""
    if not isinstance(text, str):
        raise ToolError("the path must be text, e.g. reports/q3.md")
    if "\x00" in text:
        raise ToolError("the path contains a NUL character, which is refused")
    if "\\" in text:
        raise ToolError("use / to separate folders; backslashes are refused")
    if text.startswith("/") or text.startswith("~"):
        raise ToolError(f"absolute paths are refused ({text!r}): give a path relative to the workspace, e.g. reports/q3.md")
    parts = tuple(text.split("/")) if text else ()
    if parts and parts[-1] == "":
        parts = parts[:-1]  # one trailing / names a folder
    if ".." in parts:
        raise ToolError(f"'..' is refused in {text!r}: paths stay inside the workspace")
    if "" in parts or "." in parts:
        plain = "/".join(p for p in parts if p not in ("", "."))
        suggestion = repr(plain) if plain else "an empty path for the whole workspace"
        raise ToolError(f"{text!r} is refused: write the path plainly, without ./ or //, e.g. {suggestion}")
    return parts


def show(parts: tuple[str, ...]) -> str:
    """How a path is named in messages: relative, `.` for the root."""
    return "/".join(parts) or "."


def _refusal(exc: OSError, parts: tuple[str, ...]) -> ToolError:
    where = show(parts)
    if exc.errno == errno.ELOOP:
        return ToolError(f"{where} is a symbolic link; links are not followed")
    if exc.errno == errno.ENOENT:
        return ToolError(f"{where} does not exist")
    if exc.errno == errno.ENOTDIR:
        return ToolError(f"{where} is not a folder")
    if exc.errno == errno.EISDIR:
        return ToolError(f"{where} is a folder, not a file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ToolError(f"{where} cannot be opened: permission denied")
    return ToolError(f"{where} cannot be used: {os.strerror(exc.errno or 0)}")


def _hard_linked(info: os.stat_result) -> bool:
    # A folder always has several links ("." and its children's ".."); only a
    # regular file's second name can point at data outside the root.
    return stat.S_ISREG(info.st_mode) and info.st_nlink > 1


def _hard_link_refusal(parts: tuple[str, ...]) -> ToolError:
    return ToolError(f"{show(parts)} has more than one hard link, so it may be a file outside the workspace; it is not used")


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class ConfinedRoot:
    """A folder the file tools may not leave; every method takes a relative path."""

    def __init__(self, root: Path) -> None:
        # Resolved once: the root itself may be a link (e.g. /tmp on macOS).
        self.path = Path(root).expanduser().resolve()

    def exists(self) -> bool:
        """True when the root folder is there."""
        return self.path.is_dir()

    @contextmanager
    def folder(self, parts: tuple[str, ...], create: bool = False) -> Iterator[int]:
        """A file descriptor for the folder `parts`, walked without following links."""
        try:
            fd = os.open(self.path, _DIR_FLAGS)
        except OSError as exc:
            raise ToolError("the workspace folder is missing; ask an administrator to create it") from exc
        try:
            for i, name in enumerate(parts):
                if create:
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno == errno.ENOTDIR and _is_link(name, fd):
                        # O_DIRECTORY|O_NOFOLLOW on a link says ENOTDIR; name the real reason.
                        exc = OSError(errno.ELOOP, "link")
                    raise _refusal(exc, parts[: i + 1]) from exc
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def is_file(self, parts: tuple[str, ...]) -> bool:
        """True when `parts` names a regular file (a link is not one)."""
        if not parts:
            return False
        with self.folder(parts[:-1]) as dfd:
            try:
                info = os.stat(parts[-1], dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                return False
            return stat.S_ISREG(info.st_mode)

    def read_bytes(self, parts: tuple[str, ...], limit: int) -> tuple[bytes, int]:
        """Up to `limit` bytes of a regular file, and its full size."""
        if not parts:
            raise ToolError("the path names the workspace folder, not a file")
        with self.folder(parts[:-1]) as dfd:
            try:
                # O_NONBLOCK: opening a FIFO must not hang the server.
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
            except OSError as exc:
                raise _refusal(exc, parts) from exc
            try:
                info = os.fstat(fd)
                if stat.S_ISDIR(info.st_mode):
                    raise ToolError(f"{show(parts)} is a folder, not a file")
                if not stat.S_ISREG(info.st_mode):
                    raise ToolError(f"{show(parts)} is not a regular file")
                if _hard_linked(info):
                    raise _hard_link_refusal(parts)
                with os.fdopen(fd, "rb", closefd=False) as fp:
                    return fp.read(limit), info.st_size
            finally:
                os.close(fd)

    def write_bytes(self, parts: tuple[str, ...], data: bytes) -> None:
        """Replace (or create) a file atomically, creating missing folders inside the root."""
        if not parts:
            raise ToolError("the path names the workspace folder, not a file")
        with self.folder(parts[:-1], create=True) as dfd:
            name = parts[-1]
            try:
                info = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                info = None
            if info is not None and not stat.S_ISREG(info.st_mode):
                kind = "a symbolic link; links are not followed" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                raise ToolError(f"{show(parts)} is {kind}")
            if info is not None and _hard_linked(info):
                # The rename below would not write through the link anyway;
                # refusing says plainly that this name is not the workspace's own.
                raise _hard_link_refusal(parts)
            temp = f".{name}.{secrets.token_hex(6)}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
            try:
                with os.fdopen(fd, "wb") as fp:
                    fp.write(data)
                # rename replaces a link that appeared meanwhile instead of following it.
                os.rename(temp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                try:
                    os.unlink(temp, dir_fd=dfd)
                except OSError:
                    pass
                raise

    def entries(self, parts: tuple[str, ...]) -> list[tuple[str, bool, int]]:
        """(name, is_folder, size) of a folder's entries, symbolic and hard links left out, sorted by name."""
        with self.folder(parts) as dfd:
            found = []
            for name in sorted(os.listdir(dfd)):
                info = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                # Only listed, never opened here: every read checks its own descriptor again.
                if stat.S_ISDIR(info.st_mode) or (stat.S_ISREG(info.st_mode) and not _hard_linked(info)):
                    found.append((name, stat.S_ISDIR(info.st_mode), info.st_size))
            return found

    def walk_files(self, parts: tuple[str, ...] = (), limit: int = 10_000) -> Iterator[tuple[str, ...]]:
        """Relative paths of regular files under `parts`, depth first, links never entered."""
        count = 0
        stack = [parts]
        while stack and count < limit:
            here = stack.pop()
            try:
                listed = self.entries(here)
            except ToolError:
                continue  # removed or replaced by a link while walking
            folders = []
            for name, is_dir, _size in listed:
                if is_dir:
                    folders.append((*here, name))
                elif count < limit:
                    count += 1
                    yield (*here, name)
            stack.extend(reversed(folders))
