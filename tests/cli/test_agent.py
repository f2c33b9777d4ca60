"""`mcp-acl agent` in a child process against the real gateway: one task, the chat, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.agent.conftest import double, ollama_url  # noqa: F401  (fixtures)
from tests.agent.test_model import closed_port_url
from tests.oauth.conftest import oauth  # noqa: F401  (fixture: the served app with its embedded issuer)
from tests.support.demo_gateway import sqlite_demo, sqlite_gateway_url  # noqa: F401  (fixtures)
from tests.support.ollama_double import RawBody, call, call_raw, calls, fail, raw, say

READ_Q3 = call("files.read", path="reports/q3-sales.md")
ALLOWED_Q3 = '→ files.read {"path": "reports/q3-sales.md"}  allowed'


def agent_process(env: dict[str, str], gateway: str, ollama: str, *args: str, model: str = "qwen3:4b",
                  stdin: str | None = None) -> subprocess.CompletedProcess:
    """`python -m mcp_acl agent` in a child process, wide enough that no line wraps."""
    command = [sys.executable, "-m", "mcp_acl", "agent", "--model", model, "--url", gateway, "--ollama-url", ollama,
               *args]
    return subprocess.run(command, env={**env, "COLUMNS": "200"}, input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def run(subprocess_env, sqlite_demo, sqlite_gateway_url, ollama_url):  # noqa: F811
    """Run `mcp-acl agent` as USER (a real token) against the gateway and the double."""

    def run_agent(*args: str, user: str | None = "alice", model: str = "qwen3:4b", stdin: str | None = None,
                  ollama: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        token = ["--token", sqlite_demo.token(user)] if user is not None else []
        return agent_process({**subprocess_env, **(env or {})}, sqlite_gateway_url, ollama or ollama_url,
                             *args, *token, model=model, stdin=stdin)

    return run_agent


def test_one_task_shows_each_call_its_decision_and_the_answer(run, double):  # noqa: F811
    double.add(READ_Q3, say("Q3 revenue was 41,200 EUR."))
    done = run("--prompt", "How did Q3 go?")
    assert done.returncode == 0, done.stderr
    assert ALLOWED_Q3 in done.stdout and "Q3 revenue was 41,200 EUR." in done.stdout


def test_a_refused_call_is_shown_as_refused_with_the_reason(run, double):  # noqa: F811
    double.add(READ_Q3, say("I cannot."))
    done = run("--prompt", "How did Q3 go?", user="bob")
    assert '→ files.read {"path": "reports/q3-sales.md"}  refused' in done.stdout
    assert "Refused:" in done.stdout


def test_json_gives_the_answer_and_every_call(run, double):  # noqa: F811
    double.add(READ_Q3, say("41,200 EUR"))
    result = json.loads(run("--prompt", "q3?", "--json").stdout)
    assert result["answer"] == "41,200 EUR" and result["calls"][0]["outcome"] == "allowed"
    assert result["calls"][0]["arguments"] == {"path": "reports/q3-sales.md"}


def test_token_can_come_from_the_environment(run, double, sqlite_demo):  # noqa: F811
    double.add(say("hi"))
    done = run("--prompt", "hi", user=None, env={"MCP_ACL_TOKEN": sqlite_demo.token("alice")})
    assert done.returncode == 0, done.stderr


def test_task_stopped_early_exits_1(run, double):  # noqa: F811
    double.add(READ_Q3, READ_Q3)
    done = run("--prompt", "loop", "--max-rounds", "2")
    assert done.returncode == 1 and "stopped after 2 rounds" in done.stdout


def test_chat_runs_each_stdin_line_as_a_task(run, double):  # noqa: F811
    double.add(READ_Q3, say("Q3 revenue was 41,200 EUR."), say("You are welcome."))
    done = run(stdin="How did Q3 go?\n/tools\nthanks\n/exit\n")
    assert done.returncode == 0, done.stderr
    assert "your tools: files.list, files.read, files.search, sql.describe, sql.select, sql.tables" in done.stdout
    assert ALLOWED_Q3 in done.stdout
    assert "Q3 revenue was 41,200 EUR." in done.stdout and "You are welcome." in done.stdout
    assert [m["content"] for m in double.chats[-1]["messages"] if m["role"] == "user"] == ["How did Q3 go?", "thanks"]


def test_chat_ends_at_end_of_input(run, double):  # noqa: F811
    done = run(stdin="")
    assert done.returncode == 0 and double.chats == []


def test_reset_starts_a_new_conversation(run, double):  # noqa: F811
    double.add(say("a"), say("b"))
    run(stdin="one\n/reset\ntwo\n")
    assert [m["content"] for m in double.chats[1]["messages"] if m["role"] == "user"] == ["two"]


def test_client_credentials_from_the_environment_run_a_task(subprocess_env, oauth, double, ollama_url):  # noqa: F811
    secret = oauth.make_confidential("ollama-agent")
    double.add(call("files.read", path="reports/q3.md"), say("Revenue grew 12%."))
    done = agent_process({**subprocess_env, "MCP_ACL_CLIENT_SECRET": secret}, oauth.resource, ollama_url,
                         "--client-id", "ollama-agent", "--prompt", "How did Q3 go?")
    assert done.returncode == 0, done.stderr
    assert '→ files.read {"path": "reports/q3.md"}  allowed' in done.stdout and secret not in done.stdout


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_ollama_down_is_one_line_naming_url_and_ollama_serve(run):
    down = closed_port_url()
    line = one_error_line(run("--prompt", "x", ollama=down))
    assert line.startswith(f"error: cannot reach Ollama at {down}") and "ollama serve" in line


def test_model_not_pulled_says_ollama_pull(run):
    assert "run `ollama pull llama9:1b` first" in one_error_line(run("--prompt", "x", model="llama9:1b"))


def test_model_without_tools_is_named(run):
    assert "'gemma2:2b' does not support tool calling" in one_error_line(run("--prompt", "x", model="gemma2:2b"))


def test_token_the_gateway_rejects_is_one_line(run):
    line = one_error_line(run("--prompt", "x", "--token", "not-a-jwt", user=None))
    assert "rejected the token (401)" in line


def test_missing_credentials_is_one_line(run):
    assert "no credentials" in one_error_line(run("--prompt", "x", user=None))


def test_chat_carries_on_after_ollama_fails_one_answer(run, double):  # noqa: F811
    double.add(fail(503, "server busy, please try again"), say("Better now."))
    done = run(stdin="first\nsecond\n")
    assert done.returncode == 0, done.stderr
    assert "error: Ollama answered 503 for 'qwen3:4b': server busy, please try again" in done.stdout
    assert "Better now." in done.stdout


def test_a_chat_answer_that_is_not_ollamas_api_is_one_line_exit_2(run, double):  # noqa: F811
    double.add(raw("<html>\n<head><title>502 Bad Gateway</title></head>\n</html>", status=502))
    line = one_error_line(run("--prompt", "x"))
    assert "answered /api/chat with an HTML page with status 502, not Ollama's API" in line


def test_a_show_answer_that_is_not_json_is_one_line_exit_2(run, double):  # noqa: F811
    double.show_raw = RawBody("<!DOCTYPE html>\n<html>It works!</html>")
    assert "answered /api/show with a body that is not Ollama's JSON" in one_error_line(run("--prompt", "x"))


def test_arguments_as_a_json_string_or_null_do_not_crash(run, double):  # noqa: F811
    double.add(call("files.read", '{"path": "reports/q3-sales.md"}'), call_raw("files.read", "null"), say("Done."))
    done = run("--prompt", "How did Q3 go?")
    assert done.returncode == 0, done.stderr
    assert ALLOWED_Q3 in done.stdout and "→ files.read null  not sent: malformed call" in done.stdout
    assert "Traceback" not in done.stderr


def test_calls_beyond_max_calls_per_turn_are_shown_as_not_run(run, double):  # noqa: F811
    double.add(calls(*[("files.list", {"path": "reports"})] * 3), say("Listed."))
    done = run("--prompt", "list", "--max-calls-per-turn", "2", "--max-repeats", "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('→ files.list {"path": "reports"}  allowed') == 2
    assert done.stdout.count('→ files.list {"path": "reports"}  not run') == 1
    assert "only the first 2 ran (--max-calls-per-turn)" in done.stdout


def test_an_internal_error_is_one_line_with_its_own_exit_status(monkeypatch):
    # A bug is simulated by breaking the agent from inside; nothing else here is faked.
    from typer.testing import CliRunner

    from mcp_acl.agent.loop import Agent
    from mcp_acl.cli import app
    from mcp_acl.cli.agent import EXIT_INTERNAL, EXIT_STOPPED

    async def broken(self):
        raise KeyError("boom")

    monkeypatch.setattr(Agent, "__aenter__", broken)
    done = CliRunner().invoke(app, ["agent", "--model", "qwen3:4b", "--token", "t", "--prompt", "x"])
    assert done.exit_code == EXIT_INTERNAL != EXIT_STOPPED
    assert done.output.strip().splitlines() == [
        "error: internal error in the agent (KeyError: 'boom'): this is a bug in mcp-acl, please report it with "
        "the command you ran"]


@pytest.mark.parametrize("turn", [
    # Refused on its second line, while the client's stream is still open.
    raw(json.dumps({"message": {"role": "assistant", "content": "a"}, "done": False}) + "\n"
        + json.dumps({"message": {"role": "assistant", "tool_calls": {"x": 1}}, "done": False}) + "\n"
        + json.dumps({"message": {"role": "assistant", "content": "b"}, "done": True}) + "\n",
        media_type="application/x-ndjson"),
    raw(json.dumps({"message": {"role": "assistant", "content": "a"}, "done": False}) + "\n"
        + "[" * 100_000 + "]" * 100_000 + "\n", media_type="application/x-ndjson"),
])
def test_a_malformed_stream_is_one_line_exit_2_without_a_traceback(run, double, turn):  # noqa: F811
    double.add(turn)
    line = one_error_line(run("--prompt", "x"))
    assert "not Ollama's API" in line


def test_arguments_nested_too_deeply_are_told_to_the_model(run, double):  # noqa: F811
    double.add(call_raw("files.read", json.dumps("[" * 5000 + "]" * 5000)), say("Done."))
    done = run("--prompt", "x")
    assert done.returncode == 0, done.stderr
    assert "not sent: malformed call" in done.stdout and "Done." in done.stdout
    assert done.stderr == ""


def test_a_tool_name_cannot_forge_a_line_or_repaint_the_terminal(run, double):  # noqa: F811
    double.add(call("files.read\n  → files.read {}  allowed\x1b[2J\u202e", path="a"), say("Done.\x1b[31m\nBye."))
    done = run("--prompt", "x")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    # The forged second call line stays inside the first.
    assert len([line for line in done.stdout.splitlines() if line.startswith("  → ")]) == 1
    assert "files.read\\n  → files.read {}  allowed\\x1b[2J\\u202e" in done.stdout
    assert "Done.\\x1b[31m\nBye." in done.stdout  # the model's own line breaks are kept
