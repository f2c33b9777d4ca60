"""Benchmark: a tools/call through mcp-acl to an upstream MCP server, against the same call made directly.

The upstream is an `mcp` SDK server (an `MCPServer` with one `echo` tool,
the kind tests/upstream/upstream_server.py makes), served over Streamable
HTTP on 127.0.0.1 in its own process. mcp-acl runs in another process with
that upstream registered (`upstream add up --url …`), so its catalogue has
`up.echo`. One client process calls `echo` on the upstream and `up.echo`
on mcp-acl in turn, call by call, with the SDK's client over real HTTP.
Through mcp-acl a call pays token verification, the decision, the audit
row (committed), the forwarded call on the pooled upstream session (a
second HTTP round trip) and the outcome row; a proxy's honest floor is
therefore about 2x the direct call.

    python bench/upstream.py            # full run
    python bench/upstream.py --quick    # a smoke run (CI)

The last line is `ratio N`: mcp-acl's median over the direct call's median.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp_acl.cli.serve import SERVE_HTTP, SERVE_LOOP  # noqa: E402 (after the path is set)
from _child_server import child_server, server_parser  # noqa: E402 (bench/, the script's folder)
from _timing import echo_call, mint_token, p99, run_app, sdk_client, time_pairs  # noqa: E402 (bench/, the script's folder)

NAME = "up"


# -- the two servers (each run in a child process) ---------------------------


def _upstream_app():
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench-upstream", log_level="ERROR")

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    return server.streamable_http_app()


def _acl_app(database_url: str, tools_dir: str):
    from mcp_acl.app import create_app
    from mcp_acl.config import Settings
    from mcp_acl.gateway.runtime import build_gateway
    from mcp_acl.gateway.specs import ToolConfig
    from mcp_acl.gateway.toolload import load_tool_modules
    from mcp_acl.store import make_engine

    engine = make_engine(database_url)
    settings = Settings(database_url=database_url)
    # No tool modules of its own: the only tool is the upstream's, added when the app starts.
    config = ToolConfig(files_root=Path(tools_dir), sql_url="sqlite://")
    gateway = build_gateway(settings, engine, load_tool_modules([Path(tools_dir)], config))
    return create_app(settings, engine, gateway=gateway)


# -- the client ---------------------------------------------------------------


def _prepare(workdir: Path, upstream_url: str) -> tuple[str, str]:
    """A migrated database with the upstream registered and one caller allowed its tools: (URL, token)."""
    from mcp_acl.config import Settings
    from mcp_acl.store import PolicyAdmin, make_engine, upgrade
    from mcp_acl.store.upstreams import Upstream, add_upstream

    (workdir / "tools").mkdir()
    url = f"sqlite:///{workdir / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    admin = PolicyAdmin(engine, actor="bench")
    admin.add_client("bench-cli")
    admin.add_user("ada")
    add_upstream(admin, Upstream(name=NAME, transport="http", url=upstream_url))
    admin.add_grant("user:ada", f"tool:{NAME}.*", note="the benchmark's upstream")
    token = mint_token(engine, Settings(database_url=url), "ada")
    engine.dispose()
    return url, token


def _server(args: list[str], workdir: Path, name: str):
    # This script again, in a child process, serving one of the two apps.
    return child_server([__file__, "--serve", *args], workdir, name)


async def _bench(quick: bool, stack: list[str]) -> None:
    warmup, calls = (50, 200) if quick else (300, 3000)
    direct_call, acl_call = echo_call("echo"), echo_call(f"{NAME}.echo")
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-") as tmp:
        workdir = Path(tmp)
        async with _server(["upstream", *stack], workdir, "upstream") as upstream_url:
            url, token = _prepare(workdir, upstream_url)
            acl_args = ["acl", *stack, "--database", url, "--tools", str(workdir / "tools")]
            async with (
                _server(acl_args, workdir, "acl") as acl_url,
                sdk_client(upstream_url, None) as direct,
                sdk_client(acl_url, token) as acl,
            ):
                await time_pairs(direct, acl, warmup, direct_call, acl_call)
                direct_times, acl_times = await time_pairs(direct, acl, calls, direct_call, acl_call)
    direct_median, acl_median = statistics.median(direct_times), statistics.median(acl_times)
    print(f"servers: uvicorn {' '.join(stack)}, on the listening socket of `mcp-acl serve`; the upstream an SDK MCPServer")
    print(f"tools/call round trip over loopback HTTP, {len(direct_times)} calls each, interleaved call by call")
    print(f"direct to upstream   median {direct_median:.3f} ms   p99 {p99(direct_times):.3f} ms")
    print(f"through mcp-acl      median {acl_median:.3f} ms   p99 {p99(acl_times):.3f} ms")
    print(f"added by mcp-acl     median {acl_median - direct_median:.3f} ms")
    print(f"ratio {acl_median / direct_median:.2f}")


def main() -> None:
    """Run the benchmark, or (internally) one of its servers."""
    parser = server_parser(__doc__, ("upstream", "acl"), SERVE_LOOP, SERVE_HTTP)
    args = parser.parse_args()
    if args.serve == "upstream":
        run_app(_upstream_app(), args.ready_file, args.loop, args.http)
    elif args.serve == "acl":
        run_app(_acl_app(args.database, args.tools), args.ready_file, args.loop, args.http)
    else:
        asyncio.run(_bench(args.quick, ["--loop", args.loop, "--http", args.http]))


if __name__ == "__main__":
    main()
