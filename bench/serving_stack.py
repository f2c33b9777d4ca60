"""Benchmark: mcp-acl under uvicorn's event loops and HTTP parsers (asyncio or uvloop, h11 or httptools).

Four mcp-acl servers on one database, one per stack, each on the listening
socket of `mcp-acl serve`; one client process calls them in turn, call by
call (the order rotating), with the SDK's client (2025-11-25 session) and
with a plain `httpx` keep-alive client, so a noisy neighbour on the shared
machine slows every stack alike.

    python bench/serving_stack.py           # full run
    python bench/serving_stack.py --quick   # a smoke run

The last line is `ratio N`: the median SDK-client call on uvloop+httptools
(what `mcp-acl serve` runs) over the median on asyncio+h11 (uvicorn's
fallback when neither is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway  # noqa: E402 (bench/gateway.py: the servers and clients)
from _timing import sdk_client  # noqa: E402 (bench/_timing.py: the SDK client every benchmark uses)

STACKS = [("asyncio", "h11"), ("asyncio", "httptools"), ("uvloop", "h11"), ("uvloop", "httptools")]


async def _bench(quick: bool) -> None:
    warmup, calls = (20, 100) if quick else (300, 3000)
    sdk_times: dict[tuple[str, str], list[float]] = {s: [] for s in STACKS}
    plain_times: dict[tuple[str, str], list[float]] = {s: [] for s in STACKS}
    with tempfile.TemporaryDirectory(prefix="mcp-acl-bench-") as tmp:
        workdir = Path(tmp)
        url, ada, _ = gateway._prepare(workdir, 0)
        tools_dir = str(workdir / "tools")
        async with AsyncExitStack() as stack:
            sdk, plain = {}, {}
            for loop, http in STACKS:
                args = ["acl", "--loop", loop, "--http", http, "--database", url, "--tools", tools_dir]
                server_url = await stack.enter_async_context(gateway._server(args, workdir, f"{loop}-{http}"))
                sdk[loop, http] = await stack.enter_async_context(sdk_client(server_url, ada))
                plain[loop, http] = await stack.enter_async_context(gateway.plain_client(server_url, ada, "2025-11-25"))
            for i in range(warmup + calls):
                for name in STACKS[i % 4:] + STACKS[: i % 4]:
                    sdk_time = await gateway._time_call(sdk[name])
                    plain_time = await plain[name].call()
                    if i >= warmup:
                        sdk_times[name].append(sdk_time)
                        plain_times[name].append(plain_time)
    print(f"mcp-acl tools/call over loopback HTTP, {calls} calls per stack and client, rotating call by call")
    for name in STACKS:
        label = "+".join(name)
        print(
            f"{label:<20} SDK client median {statistics.median(sdk_times[name]):.3f} ms   "
            f"plain httpx median {statistics.median(plain_times[name]):.3f} ms"
        )
    ratio = statistics.median(sdk_times["uvloop", "httptools"]) / statistics.median(sdk_times["asyncio", "h11"])
    print(f"ratio {ratio:.2f}")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    asyncio.run(_bench(parser.parse_args().quick))


if __name__ == "__main__":
    main()
