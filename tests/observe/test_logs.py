"""`serve --log-format json`: every line one JSON object, request ids where known, never a token."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import anyio
import httpx2

from gateway.harness import HEADERS, INIT, connect, sqlite_world  # noqa: F401 (fixture)
from mcp_acl.observe.logs import REDACTED, scrub
from mcp_acl.store import PolicyAdmin
from tests.cli.test_serve import read_until

FAILING_TOOL = '''
from mcp_acl.gateway.specs import ToolSpec

SCHEMA = {"type": "object", "properties": {"note": {"type": "string"}}}


def fail(args, ctx):
    raise RuntimeError("the failing tool failed on purpose, holding " + args.get("note", ""))


def load(config):
    return [ToolSpec(name="fail.now", description="Always fails.", input_schema=SCHEMA, handler=fail)]
'''


def test_scrub_replaces_anything_shaped_like_a_token():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    assert scrub(f"Authorization: Bearer abc.def-ghi") == f"Authorization: Bearer {REDACTED}"
    assert scrub(f"POST /mcp?access_token={jwt}&x=1") == f"POST /mcp?access_token={REDACTED}&x=1"
    assert scrub(f"got {jwt} here") == f"got {REDACTED} here"
    assert scrub("nothing secret in files.read reports/q3.md") == "nothing secret in files.read reports/q3.md"


def test_json_lines_carry_request_ids_and_never_a_token(sqlite_world, subprocess_env, tmp_path):
    tools = tmp_path / "failing-tools"
    tools.mkdir()
    (tools / "failing.py").write_text(FAILING_TOOL)
    PolicyAdmin(sqlite_world.engine, actor="test").add_grant("role:analyst", "tool:fail.now")
    env = {**subprocess_env, "MCP_ACL_TOOLS_PATH": str(tools), "MCP_ACL_LOG_FORMAT": "json"}
    token = sqlite_world.token("alice")
    forged = token[:-10] + "AAAAAAAAAA"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--database", sqlite_world.database_url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", read_until(proc, [], "mcp-acl serving")).group(0)

        async def traffic():
            async with connect(url, token) as alice:
                await alice.list_tools()
                # The tool's exception text holds the token: the log line must not.
                failed = await alice.call_tool("fail.now", {"note": token})
            async with httpx2.AsyncClient(timeout=30) as http:
                bad = await http.post(url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {forged}"})
                in_url = await http.post(f"{url}?access_token={token}", json=INIT, headers=HEADERS)
            return failed, bad, in_url

        failed, bad, in_url = anyio.run(traffic)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    assert failed.is_error and (bad.status_code, in_url.status_code) == (401, 400)
    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    for secret in (token, forged, token.split(".")[2], forged.split(".")[2]):
        assert secret not in stderr
    [tool_failed] = [r for r in records if r["message"] == "tool fail.now failed"]
    assert tool_failed["level"] == "error" and tool_failed["request_id"] and len(tool_failed["session"]) == 12
    assert REDACTED in tool_failed["exception"]
    assert any(r["logger"] == "mcp_acl.auth.middleware" and "401" in r["message"] for r in records)
    assert any(r["logger"] == "uvicorn.access" and f"access_token={REDACTED}" in r["message"] for r in records)
    assert any(r["logger"] == "mcp_acl.cli.shutdown" and r["message"].startswith("shutting down") for r in records)
