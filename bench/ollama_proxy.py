"""Benchmark: a chat with one tool call through the governed Ollama endpoint, against the same chat made directly.

The model is the scripted Ollama of the tests (tests/support/ollama_double.py,
Ollama's real HTTP API) in its own process: each chat's first round calls
`bench.echo`, its second answers. mcp-acl runs `serve --ollama` in another
process with that double as its upstream. One client process, the real
`ollama` client, runs the chat three ways, one of each per round, the order turned every round:

- direct: two /api/chat requests to the double, with the tool run in the
  client process between them (what an app that runs its own tools does);
- relay: one /api/chat to a bare relay in a third process, on the same
  server stack, that makes both model rounds upstream through the client
  mcp-acl uses and runs the tool itself: no token, no policy, no audit. It
  is the least any proxy between the app and Ollama adds (one more HTTP hop
  and the relay's own client work), measured so the reader can tell that
  floor from mcp-acl's part;
- governed: one /api/chat to mcp-acl's /ollama, which verifies the token,
  lists the caller's tools, fetches the access-policy prompt (a decided and
  audited prompts/get), runs both model rounds upstream and admits the call
  (decision, audit row committed, run, outcome).

    python bench/ollama_proxy.py            # full run
    python bench/ollama_proxy.py --quick    # a smoke run (CI)

The last line is `ratio N`: the governed chat's median over the direct chat's median;
the line before it, `relay ratio N`, the relay's.
With a real model each round takes hundreds of milliseconds, and this overhead vanishes in it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp_acl.cli.serve import SERVE_HTTP, SERVE_LOOP  # noqa: E402 (after the path is set)
from _child_server import child_server, server_parser  # noqa: E402 (bench/, the script's folder)
from _timing import mint_token, p99, run_app  # noqa: E402 (bench/, the script's folder)

MODEL = "qwen3:4b"
ANSWER = "The tool said hi."
TASK = [{"role": "user", "content": "Ask the echo tool to say hi."}]
ECHO_MODULE = '''
from mcp_acl.gateway.specs import ToolSpec

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

async def echo(args, ctx):
    return args["text"]

def load(config):
    return [ToolSpec(name="bench.echo", description="Say it back.", input_schema=SCHEMA, handler=echo)]
'''
ECHO_TOOL = {"type": "function", "function": {"name": "bench.echo", "description": "Say it back.", "parameters": {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}}


# -- the two servers (each run in a child process) ---------------------------


def _double_app(chats: int):
    from tests.support.ollama_double import OllamaDouble, call, say

    # Chats run one after another, each a call then an answer, so the script can simply alternate.
    turns = [turn for _ in range(chats) for turn in (call("bench.echo", text="hi"), say(ANSWER))]
    return OllamaDouble(turns).app


def _acl_app(database_url: str, tools_dir: str, upstream: str):
    from mcp_acl.app import create_app
    from mcp_acl.config import Settings
    from mcp_acl.gateway.runtime import build_gateway
    from mcp_acl.gateway.specs import ToolConfig
    from mcp_acl.gateway.toolload import load_tool_modules
    from mcp_acl.ollama_endpoint import EndpointSettings
    from mcp_acl.store import make_engine

    engine = make_engine(database_url)
    settings = Settings(database_url=database_url)
    config = ToolConfig(files_root=Path(tools_dir), sql_url="sqlite://")
    gateway = build_gateway(settings, engine, load_tool_modules([Path(tools_dir)], config))
    return create_app(settings, engine, gateway=gateway, ollama=EndpointSettings(upstream))


def _relay_app(upstream: str):
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from mcp_acl.agent.model import chat_client

    client = chat_client(upstream)

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        messages = list(body["messages"])
        first = await client.chat(body["model"], messages=messages, tools=[ECHO_TOOL], stream=False)
        (tool_call,) = first["message"]["tool_calls"]
        messages += [first["message"], {"role": "tool", "content": _echo(tool_call["function"]["arguments"]),
                                        "tool_name": "bench.echo"}]
        return JSONResponse(dict(await client.chat(body["model"], messages=messages, tools=[ECHO_TOOL], stream=False)))

    return Starlette(routes=[Route("/api/chat", chat, methods=["POST"])])


# -- the client ---------------------------------------------------------------


def _prepare(workdir: Path) -> tuple[str, str]:
    from mcp_acl.config import Settings
    from mcp_acl.store import PolicyAdmin, make_engine, upgrade

    (workdir / "tools").mkdir()
    (workdir / "tools" / "echo.py").write_text(textwrap.dedent(ECHO_MODULE))
    url = f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    admin = PolicyAdmin(engine, actor="bench")
    admin.add_client("bench-cli")
    admin.add_user("ada")
    admin.add_grant("user:ada", "tool:bench.*", note="the benchmark's echo tool")
    admin.add_grant("user:ada", "prompt:access-policy", note="ada may read her access policy")
    token = mint_token(engine, Settings(database_url=url), "ada")
    engine.dispose()
    return url, token


def _server(args: list[str], workdir: Path, name: str):
    # This script again, in a child process, serving one of the two apps.
    return child_server([__file__, "--serve", *args], workdir, name)


def _echo(arguments: dict) -> str:
    return arguments["text"]


async def _direct_chat(client) -> float:
    started = time.perf_counter()
    messages = list(TASK)
    first = await client.chat(MODEL, messages=messages, tools=[ECHO_TOOL])
    (tool_call,) = first.message.tool_calls
    messages += [first.message, {"role": "tool", "content": _echo(tool_call.function.arguments), "tool_name": "bench.echo"}]
    second = await client.chat(MODEL, messages=messages, tools=[ECHO_TOOL])
    elapsed = (time.perf_counter() - started) * 1000
    if second.message.content != ANSWER:
        raise RuntimeError(f"the direct chat answered {second.message.content!r}")
    return elapsed


async def _one_request_chat(client) -> float:
    # The relay's and the governed chat: one request, the tool loop on the other side.
    started = time.perf_counter()
    answer = await client.chat(MODEL, messages=list(TASK))
    elapsed = (time.perf_counter() - started) * 1000
    if answer.message.content != ANSWER:
        raise RuntimeError(f"the chat through {client._client.base_url} answered {answer.message.content!r}")
    return elapsed


async def _time_rounds(clients: list, rounds: int) -> list[list[float]]:
    """Each round one chat per way, the order turned every round: a noisy neighbour slows all alike."""
    times: list[list[float]] = [[] for _ in clients]
    chats = [_direct_chat] + [_one_request_chat] * (len(clients) - 1)
    for i in range(rounds):
        for k in range(len(clients)):
            way = (i + k) % len(clients)
            times[way].append(await chats[way](clients[way]))
    return times


async def _check_the_call_runs(url: str, token: str) -> None:
    # Once, before timing: the governed chat's call must be allowed, or the benchmark measures refusals.
    import httpx

    async with httpx.AsyncClient(timeout=60) as http:
        answer = await http.post(url + "/api/chat", json={"model": MODEL, "messages": TASK, "stream": False},
                                 headers={"Authorization": f"Bearer {token}"})
    calls = json.loads(answer.text)["mcp_acl"]["tool_calls"]
    if calls != [{"name": "bench.echo", "outcome": "allowed"}]:
        raise RuntimeError(f"the governed chat's tool call did not run: {calls}")


async def _bench(quick: bool, stack: list[str]) -> None:
    import ollama

    warmup, chats = (20, 100) if quick else (100, 1000)
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-") as tmp:
        workdir = Path(tmp)
        double_args = ["double", *stack, "--chats", str(3 * 2 * (warmup + chats) + 1)]
        async with _server(double_args, workdir, "double") as double_mcp:
            double_url = double_mcp.removesuffix("/mcp")
            url, token = _prepare(workdir)
            acl_args = ["acl", *stack, "--database", url, "--tools", str(workdir / "tools"), "--upstream", double_url]
            async with (
                _server(["relay", *stack, "--upstream", double_url], workdir, "relay") as relay_mcp,
                _server(acl_args, workdir, "acl") as acl_mcp,
            ):
                governed_url = acl_mcp.removesuffix("/mcp") + "/ollama"
                await _check_the_call_runs(governed_url, token)
                async with (
                    ollama.AsyncClient(host=double_url) as direct,
                    ollama.AsyncClient(host=relay_mcp.removesuffix("/mcp")) as relay,
                    ollama.AsyncClient(host=governed_url, headers={"Authorization": f"Bearer {token}"}) as governed,
                ):
                    await _time_rounds([direct, relay, governed], warmup)
                    direct_times, relay_times, governed_times = await _time_rounds([direct, relay, governed], chats)
    direct_median, relay_median, governed_median = (statistics.median(t) for t in (direct_times, relay_times, governed_times))
    print(f"servers: uvicorn {' '.join(stack)}, on the listening socket of `mcp-acl serve`; the model the scripted Ollama")
    print(f"a chat with one tool call, real `ollama` client, {len(direct_times)} chats each way, interleaved chat by chat")
    print(f"direct (tool run by the app)   median {direct_median:.3f} ms   p99 {p99(direct_times):.3f} ms")
    print(f"bare relay (no policy)         median {relay_median:.3f} ms   p99 {p99(relay_times):.3f} ms")
    print(f"governed (through /ollama)     median {governed_median:.3f} ms   p99 {p99(governed_times):.3f} ms")
    print(f"added by the relay's hop       median {relay_median - direct_median:.3f} ms")
    print(f"added by mcp-acl beyond it     median {governed_median - relay_median:.3f} ms")
    print(f"relay ratio {relay_median / direct_median:.2f}")
    print(f"ratio {governed_median / direct_median:.2f}")


def main() -> None:
    """Run the benchmark, or (internally) one of its servers."""
    parser = server_parser(__doc__, ("double", "relay", "acl"), SERVE_LOOP, SERVE_HTTP)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--chats", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "double":
        run_app(_double_app(args.chats), args.ready_file, args.loop, args.http)
    elif args.serve == "relay":
        run_app(_relay_app(args.upstream), args.ready_file, args.loop, args.http)
    elif args.serve == "acl":
        run_app(_acl_app(args.database, args.tools, args.upstream), args.ready_file, args.loop, args.http)
    else:
        asyncio.run(_bench(args.quick, ["--loop", args.loop, "--http", args.http]))


if __name__ == "__main__":
    main()
