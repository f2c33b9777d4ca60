"""Benchmark: a tools/call round trip through mcp-acl against a bare `mcp` SDK server.

Both servers run in their own process on 127.0.0.1, served the way
`mcp-acl serve` serves (its listening socket and uvicorn settings), and
expose the same trivial tool (`bench.echo`); one client process calls each
in turn over real HTTP with the SDK's client (2025-11-25 sessions),
alternating call by call. Through mcp-acl every call pays token
verification, the session check, the decision at the current revision, the
audit row (committed) and its outcome row.

Then the same calls from a plain `httpx` client on one keep-alive
connection, which reads each response to its end (the SDK's client stops
at the JSON-RPC response), in both protocol eras: the figure that showed
a 40 ms delayed-ACK stall per call while the server left Nagle on.

Then tools/list for an identity allowed 500 of 10,000 tools (first call
builds the filtered listing, later ones hit the per-revision cache).

    python bench/gateway.py                          # full run
    python bench/gateway.py --quick                  # a smoke run (CI)
    python bench/gateway.py --loop asyncio --http h11   # another uvicorn stack

The last line is `ratio N`: mcp-acl's median over the bare server's (SDK client).
"""

from __future__ import annotations

import argparse
import asyncio
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
from _timing import echo_call, mint_token, p99, run_app, sdk_client, time_pairs  # noqa: E402 (bench/, the script's folder)
from plain_client import PlainClient, plain_client  # noqa: E402 (bench/, the script's folder)

ECHO_MODULE = '''
from mcp_acl.gateway.specs import ToolSpec

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

async def echo(args, ctx):
    return args["text"]

def load(config):
    tools = [ToolSpec(name="bench.echo", description="Say it back.", input_schema=SCHEMA, handler=echo)]
    count = int(config.extra.get("bench_tools", "0"))
    tools += [
        ToolSpec(name=f"g{i // 500:02d}.tool{i % 500:03d}", description=f"Synthetic tool {i}.", input_schema=SCHEMA, handler=echo)
        for i in range(count)
    ]
    return tools
'''


# -- the two servers (each run in a child process) ---------------------------


def _bare_app():
    import mcp_types as types
    from mcp.server import Server

    tool = types.Tool(name="bench.echo", description="Say it back.", input_schema={"type": "object", "properties": {"text": {"type": "string"}}})

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx, params):
        return types.CallToolResult(content=[types.TextContent(text=params.arguments["text"])])

    return Server("bare", on_list_tools=list_tools, on_call_tool=call_tool).streamable_http_app()


def _acl_app(database_url: str, tools_dir: str, tool_count: int):
    from mcp_acl.app import create_app
    from mcp_acl.config import Settings
    from mcp_acl.gateway.runtime import build_gateway
    from mcp_acl.gateway.specs import ToolConfig
    from mcp_acl.gateway.toolload import load_tool_modules
    from mcp_acl.store import make_engine

    engine = make_engine(database_url)
    settings = Settings(database_url=database_url)
    config = ToolConfig(files_root=Path(tools_dir), sql_url="sqlite://", extra={"bench_tools": str(tool_count)})
    gateway = build_gateway(settings, engine, load_tool_modules([Path(tools_dir)], config))
    return create_app(settings, engine, gateway=gateway)


# -- the client ---------------------------------------------------------------


def _prepare(workdir: Path, tool_count: int) -> tuple[str, str, str]:
    from mcp_acl.config import Settings
    from mcp_acl.store import PolicyAdmin, make_engine, upgrade

    (workdir / "tools").mkdir()
    (workdir / "tools" / "echo.py").write_text(textwrap.dedent(ECHO_MODULE))
    url = f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    admin = PolicyAdmin(engine, actor="bench")
    admin.add_client("bench-cli")
    admin.add_role("caller")
    admin.add_user("ada", ["caller"])
    admin.add_user("lin")
    admin.add_grant("role:caller", "tool:bench.*", note="the benchmark's echo tool")
    # lin may use one group of 500 among the 10,000 synthetic tools.
    admin.add_grant("user:lin", f"tool:g{max(tool_count // 500 // 2, 0):02d}.*")
    settings = Settings(database_url=url)
    tokens = mint_token(engine, settings, "ada"), mint_token(engine, settings, "lin")
    engine.dispose()
    return url, *tokens


def _server(args: list[str], workdir: Path, name: str):
    # This script again, in a child process, serving one of the two apps.
    return child_server([__file__, "--serve", *args], workdir, name)


_time_call = echo_call("bench.echo")


async def _time_plain(bare_url: str, acl_url: str, token: str, era: str, warmup: int, calls: int) -> tuple[list[float], list[float]]:
    async with plain_client(bare_url, None, era) as bare, plain_client(acl_url, token, era) as acl:
        await time_pairs(bare, acl, warmup, PlainClient.call)
        return await time_pairs(bare, acl, calls, PlainClient.call)


async def _time_lists(url: str, token: str, repeat: int) -> tuple[float, list[float], int]:
    async with sdk_client(url, token) as client:
        started = time.perf_counter()
        first = await client.list_tools()
        cold = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(repeat):
            started = time.perf_counter()
            await client.list_tools()
            warm.append((time.perf_counter() - started) * 1000)
    return cold, warm, len(first.tools)


PLAIN_ERAS = ("2025-11-25", "2026-07-28")


async def _bench(quick: bool, stack: list[str]) -> None:
    warmup, calls = (100, 300) if quick else (300, 5000)
    plain_calls = calls if quick else calls // 2
    tool_count = 1000 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-") as tmp:
        workdir = Path(tmp)
        url, ada, lin = _prepare(workdir, tool_count)
        tools_dir = str(workdir / "tools")
        async with (
            _server(["bare", *stack], workdir, "bare") as bare_url,
            _server(["acl", *stack, "--database", url, "--tools", tools_dir, "--tool-count", str(tool_count)], workdir, "acl") as acl_url,
        ):
            async with sdk_client(bare_url, None) as bare, sdk_client(acl_url, ada) as acl:
                await time_pairs(bare, acl, warmup, _time_call)
                bare_times, acl_times = await time_pairs(bare, acl, calls, _time_call)
            plain = {era: await _time_plain(bare_url, acl_url, ada, era, warmup, plain_calls) for era in PLAIN_ERAS}
            cold, warm, listed = await _time_lists(acl_url, lin, 20 if quick else 100)
    bare_median, acl_median = statistics.median(bare_times), statistics.median(acl_times)
    print(f"servers: uvicorn {' '.join(stack)}, on the listening socket of `mcp-acl serve`")
    print(f"tools/call round trip over loopback HTTP, {len(bare_times)} calls each, interleaved call by call")
    print(f"bare mcp server   median {bare_median:.3f} ms   p99 {p99(bare_times):.3f} ms")
    print(f"mcp-acl           median {acl_median:.3f} ms   p99 {p99(acl_times):.3f} ms")
    print(f"plain httpx client on one keep-alive connection, {plain_calls} calls each, interleaved call by call")
    for era, (bare_plain, acl_plain) in plain.items():
        print(f"plain {era}, bare mcp server   median {statistics.median(bare_plain):.3f} ms   p99 {p99(bare_plain):.3f} ms")
        print(f"plain {era}, mcp-acl           median {statistics.median(acl_plain):.3f} ms   p99 {p99(acl_plain):.3f} ms")
    print(f"tools/list with {listed} of {tool_count} tools visible: first {cold:.1f} ms, then median {statistics.median(warm):.2f} ms")
    print(f"ratio {acl_median / bare_median:.2f}")


def main() -> None:
    """Run the benchmark, or (internally) one of its servers."""
    parser = server_parser(__doc__, ("bare", "acl"), SERVE_LOOP, SERVE_HTTP)
    parser.add_argument("--tool-count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bare":
        run_app(_bare_app(), args.ready_file, args.loop, args.http)
    elif args.serve == "acl":
        run_app(_acl_app(args.database, args.tools, args.tool_count), args.ready_file, args.loop, args.http)
    else:
        asyncio.run(_bench(args.quick, ["--loop", args.loop, "--http", args.http]))


if __name__ == "__main__":
    main()
