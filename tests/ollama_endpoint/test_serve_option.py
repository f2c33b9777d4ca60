"""`mcp-acl serve --ollama`: its options, checked before anything is served, and the real command serving /ollama."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from mcp_acl.cli import app
from tests.auth.support import LoopbackServer
from tests.support.ollama_double import OLLAMA_VERSION, OllamaDouble


@pytest.mark.parametrize(("args", "said"), [
    (["--ollama-trusted-client", "open-webui"], "need --ollama"),
    (["--ollama", "--ollama-trusted-client", "open-webui"], "go together"),
    (["--ollama", "--ollama-user-header", "X-OpenWebUI-User-Email"], "go together"),
    (["--ollama", "--ollama-trusted-client", "open-webui", "--ollama-user-header", " "], "needs a header name"),
])
def test_front_end_options_are_checked_before_serving(sqlite_demo, args, said):
    result = CliRunner().invoke(app, ["serve", "--port", "0", "--database", sqlite_demo.settings.database_url, *args])
    assert result.exit_code == 2 and said in result.output


def test_serve_with_ollama_answers_under_slash_ollama(sqlite_demo):
    double = OllamaDouble()
    with LoopbackServer(double.app) as upstream:
        env = {**os.environ, "OLLAMA_HOST": upstream}
        command = [sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--ollama",
                   "--database", sqlite_demo.settings.database_url]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            seen = ""
            deadline = time.monotonic() + 60
            while "Ollama API at" not in seen:
                assert proc.poll() is None and time.monotonic() < deadline, seen
                seen += proc.stdout.readline()
            found = re.search(r"Ollama API at (\S+) \(forwarding to (\S+)\)", seen)
            assert found is not None and found.group(2) == upstream
            headers = {"Authorization": f"Bearer {sqlite_demo.token('alice')}"}
            # The socket listens before uvicorn accepts: the request waits in its backlog.
            answer = httpx.get(found.group(1) + "/api/version", headers=headers, timeout=30)
            assert answer.json() == {"version": OLLAMA_VERSION}
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
