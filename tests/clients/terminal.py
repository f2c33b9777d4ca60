"""A program run in a pseudo-terminal and driven like a person at the keyboard, for clients that are
TUIs with no non-interactive mode (ollmcp). What it printed is kept, with terminal control sequences
removed, so a test can wait for a line and read the screen."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path

# Colours, cursor moves, window titles and charset switches: none of them is text.
CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


class Terminal:
    """`argv` on a 200×50 pseudo-terminal, in its own process group."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self._master, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        try:
            self.process = subprocess.Popen(
                list(argv), stdin=follower, stdout=follower, stderr=follower, env=env, cwd=cwd, start_new_session=True
            )
        finally:
            os.close(follower)
        self._raw = b""
        self.mark = 0

    def screen(self) -> str:
        """Everything printed so far, as text."""
        return CONTROL.sub("", self._raw.decode("utf-8", "replace"))

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self._master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # the program has gone and closed its side
            return False
        self._raw += data
        return bool(data)

    def expect(self, pattern: str, timeout: float = 60) -> re.Match:
        """Wait for `pattern` in what was printed since the last `expect`; fail with the screen's tail."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.screen()[self.mark:])
            if found:
                self.mark += found.end()
                return found
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{pattern!r} never appeared; the screen ends with:\n{self.screen()[-3000:]}")

    def type(self, line: str) -> None:
        """Type `line` and press Enter."""
        os.write(self._master, line.encode() + b"\r")

    def close(self) -> None:
        """Stop the program (and its children) and release the terminal."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        os.close(self._master)
