"""`mcp-acl agent` in a child process: one task, the chat on scripted stdin, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.agent.conftest import double, mini, mini_server, ollama_server  # noqa: F401  (fixtures)
from tests.agent.test_model import closed_port_url
from tests.support.ollama_double import call, say

READ_Q3 = call("notes.read", path="reports/q3.md")


def run_agent(env, *args: str, stdin: str | None = None, ollama: str, gateway: str, token: str | None = "tok-alice"):
    command = [sys.executable, "-m", "mcp_acl", "agent", "--model", "qwen3:4b", "--url", gateway,
               "--ollama-url", ollama, *args]
    if token is not None:
        command += ["--token", token]
    env = {**env, "COLUMNS": "200"}
    return subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def urls(ollama_server, mini_server):  # noqa: F811
    return {"ollama": ollama_server.url, "gateway": mini_server.url + "/mcp"}


def test_one_task_shows_each_call_its_decision_and_the_answer(subprocess_env, double, urls):  # noqa: F811
    double.add(READ_Q3, say("Q3 grew 12%."))
    done = run_agent(subprocess_env, "--prompt", "How did Q3 go?", **urls)
    assert done.returncode == 0, done.stderr
    assert '→ notes.read {"path": "reports/q3.md"}  allowed' in done.stdout
    assert "Q3 grew 12%." in done.stdout


def test_a_refused_call_is_shown_as_refused_with_the_reason(subprocess_env, double, urls):  # noqa: F811
    double.add(READ_Q3, say("I cannot."))
    done = run_agent(subprocess_env, "--prompt", "How did Q3 go?", token="tok-bob", **urls)
    assert '→ notes.read {"path": "reports/q3.md"}  refused' in done.stdout
    assert "bob reads public/ notes only" in done.stdout


def test_json_gives_the_answer_and_every_call(subprocess_env, double, urls):  # noqa: F811
    double.add(READ_Q3, say("Q3 grew 12%."))
    done = run_agent(subprocess_env, "--prompt", "q3?", "--json", **urls)
    result = json.loads(done.stdout)
    assert result["answer"] == "Q3 grew 12%." and result["calls"][0]["outcome"] == "allowed"


def test_token_can_come_from_the_environment(subprocess_env, double, urls):  # noqa: F811
    double.add(say("hi"))
    done = run_agent({**subprocess_env, "MCP_ACL_TOKEN": "tok-alice"}, "--prompt", "hi", token=None, **urls)
    assert done.returncode == 0, done.stderr


def test_task_stopped_early_exits_1(subprocess_env, double, urls):  # noqa: F811
    double.add(*[READ_Q3] * 2)
    done = run_agent(subprocess_env, "--prompt", "loop", "--max-rounds", "2", **urls)
    assert done.returncode == 1 and "stopped after 2 rounds" in done.stdout


def test_chat_runs_each_stdin_line_as_a_task(subprocess_env, double, urls):  # noqa: F811
    double.add(READ_Q3, say("Q3 grew 12%."), say("You are welcome."))
    done = run_agent(subprocess_env, stdin="How did Q3 go?\n/tools\nthanks\n/exit\n", **urls)
    assert done.returncode == 0, done.stderr
    assert "your tools: notes.list, notes.read" in done.stdout
    assert '→ notes.read {"path": "reports/q3.md"}  allowed' in done.stdout
    assert "Q3 grew 12%." in done.stdout and "You are welcome." in done.stdout
    assert [m["content"] for m in double.chats[-1]["messages"] if m["role"] == "user"] == ["How did Q3 go?", "thanks"]


def test_chat_ends_at_end_of_input(subprocess_env, double, urls):  # noqa: F811
    done = run_agent(subprocess_env, stdin="", **urls)
    assert done.returncode == 0 and double.chats == []


def test_reset_starts_a_new_conversation(subprocess_env, double, urls):  # noqa: F811
    double.add(say("a"), say("b"))
    run_agent(subprocess_env, stdin="one\n/reset\ntwo\n", **urls)
    assert [m["content"] for m in double.chats[1]["messages"] if m["role"] == "user"] == ["two"]


def one_error_line(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_ollama_down_is_one_line_naming_url_and_ollama_serve(subprocess_env, urls):
    down = closed_port_url()
    line = one_error_line(run_agent(subprocess_env, "--prompt", "x", ollama=down, gateway=urls["gateway"]))
    assert line.startswith(f"error: cannot reach Ollama at {down}") and "ollama serve" in line


def test_model_not_pulled_says_ollama_pull(subprocess_env, urls):
    done = run_agent(subprocess_env, "--prompt", "x", **urls)
    done = subprocess.run([*done.args[:5], "llama9:1b", *done.args[6:]], env={**subprocess_env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)
    assert "run `ollama pull llama9:1b` first" in one_error_line(done)


def test_model_without_tools_is_named(subprocess_env, urls):
    command = [sys.executable, "-m", "mcp_acl", "agent", "--model", "gemma2:2b", "--url", urls["gateway"],
               "--ollama-url", urls["ollama"], "--token", "tok-alice", "--prompt", "x"]
    done = subprocess.run(command, env={**subprocess_env, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=120)
    assert "'gemma2:2b' does not support tool calling" in one_error_line(done)


def test_token_the_gateway_rejects_is_one_line(subprocess_env, urls):
    line = one_error_line(run_agent(subprocess_env, "--prompt", "x", token="tok-mallory", **urls))
    assert "rejected the token (401)" in line


def test_missing_credentials_is_one_line(subprocess_env, urls):
    line = one_error_line(run_agent(subprocess_env, "--prompt", "x", token=None, **urls))
    assert "no credentials" in line
