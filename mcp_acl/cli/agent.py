"""`mcp-acl agent`: a model on Ollama working through the gateway, as you."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import anyio
import anyio.to_thread
import typer
from rich.console import Console
from rich.text import Text

from mcp_acl.agent import DEFAULT_MAX_CALLS_PER_TURN, DEFAULT_MAX_REPEATS, DEFAULT_MAX_ROUNDS, DEFAULT_NUM_CTX
from mcp_acl.cli._common import JsonOpt, fail, out, print_json
from mcp_acl.config import DEFAULT_RESOURCE_URL

if TYPE_CHECKING:
    from mcp_acl.agent import Agent, AgentSettings, TokenSource

# Exit statuses besides 0 (answered) and 2 (something you must fix, see _common.fail):
# a one-shot task that ended early (round cap or repeated call), and a bug in
# mcp-acl itself, which must not look like either.
EXIT_STOPPED = 1
EXIT_INTERNAL = 3
# How much of an unexpected error's own message the one line quotes.
_QUOTED = 200


def agent(
    model: Annotated[str, typer.Option("--model", help="An Ollama model that can call tools, e.g. qwen3:4b.")],
    url: Annotated[str, typer.Option("--url", envvar="MCP_ACL_RESOURCE_URL",
                                     help="The gateway's MCP endpoint.")] = DEFAULT_RESOURCE_URL,
    token: Annotated[str | None, typer.Option("--token", envvar="MCP_ACL_TOKEN", show_default=False,
                                              help="Your access token for the gateway.")] = None,
    client_id: Annotated[str | None, typer.Option("--client-id", envvar="MCP_ACL_CLIENT_ID", show_default=False,
                                                  help="OAuth client id, for the client credentials grant.")] = None,
    client_secret: Annotated[str | None, typer.Option("--client-secret", envvar="MCP_ACL_CLIENT_SECRET",
                                                      show_default=False, help="OAuth client secret.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", show_default=False,
                                               help="Run this one task and exit, instead of chatting.")] = None,
    ollama: Annotated[str | None, typer.Option("--ollama-url", show_default=False,
                                               help="Ollama's URL; default: OLLAMA_HOST or http://127.0.0.1:11434.")] = None,
    num_ctx: Annotated[int, typer.Option("--num-ctx", help="Context window in TOKENS to ask Ollama for.")] = DEFAULT_NUM_CTX,
    max_rounds: Annotated[int, typer.Option("--max-rounds", help="Model turns per task before the agent stops.")] = DEFAULT_MAX_ROUNDS,
    max_repeats: Annotated[int, typer.Option("--max-repeats",
                                             help="Times the same call may be made in one task.")] = DEFAULT_MAX_REPEATS,
    max_calls_per_turn: Annotated[int, typer.Option(
        "--max-calls-per-turn", help="Tool calls run per model turn (the rest are not run).",
    )] = DEFAULT_MAX_CALLS_PER_TURN,
    json_out: JsonOpt = False,
) -> None:
    """Chat with a model on Ollama that uses mcp-acl's tools as you, and only as you.

    The model sees exactly your catalogue and your access-policy prompt; every
    call it makes is decided by the gateway, and each one is shown with its
    arguments and whether it was allowed.

    Exit status: 0 answered, 1 a --prompt task stopped early, 2 an error you can
    fix (one line says how), 3 an internal error (a bug in mcp-acl).

    Example: mcp-acl agent --model qwen3:4b --token "$ALICE_TOKEN" --prompt "Summarise reports/q3.md"

    Example: MCP_ACL_CLIENT_SECRET=… mcp-acl agent --model qwen3:4b --client-id ollama-agent
    """
    # Imported here: the MCP and Ollama clients are slow to load, and only this command needs them.
    from mcp_acl.agent import AgentError, AgentSettings, token_source

    try:
        settings = AgentSettings(model=model, gateway_url=url, ollama_url=ollama, num_ctx=num_ctx,
                                 max_rounds=max_rounds, max_repeats=max_repeats,
                                 max_calls_per_turn=max_calls_per_turn)
        tokens = token_source(url, token=token, client_id=client_id, client_secret=client_secret)
    except AgentError as exc:
        fail(str(exc))
    if json_out and prompt is None:
        fail("--json needs --prompt (a chat has no single result)")
    try:
        code = anyio.run(_run, settings, tokens, prompt, json_out)
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        # One line either way: a traceback would bury the message (and could show local values).
        found = _agent_error(exc)
        if found is not None:
            fail(str(found))
        detail = " ".join(str(exc).split())[:_QUOTED]
        fail(f"internal error in the agent ({type(exc).__name__}{': ' + detail if detail else ''}): "
             "this is a bug in mcp-acl, please report it with the command you ran", EXIT_INTERNAL)
    if code:
        raise typer.Exit(code)


def _agent_error(exc: BaseException) -> Exception | None:
    """The `AgentError` that `exc` is, or that a task group wrapped in it."""
    from mcp_acl.agent import AgentError

    if isinstance(exc, AgentError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _agent_error(inner)
            if found is not None:
                return found
    return None


async def _run(settings: AgentSettings, tokens: TokenSource, prompt: str | None, json_out: bool) -> int:
    from mcp_acl.agent import Agent
    from mcp_acl.cli.agent_view import EventView, result_json

    view = EventView(out)
    async with Agent(settings, tokens, on_event=None if json_out else view) as session:
        if prompt is not None:
            result = await session.ask(prompt)
            if json_out:
                print_json(result_json(result))
            return EXIT_STOPPED if result.stopped else 0
        await _chat(session, out)
        return 0


async def _chat(session: Agent, console: Console) -> None:
    """Read a line, run it as a task, show what happened; until EOF or /exit."""
    from mcp_acl.agent import GatewayFailed, OllamaFailed
    from mcp_acl.agent.model import ollama_url

    s = session.settings
    console.print(Text(f"mcp-acl agent · {s.model} on {ollama_url(s.ollama_url)} · gateway {s.gateway_url}",
                       style="bold"))
    _show_tools(session, console)
    console.print(Text("Type a task. /tools lists your tools, /reset starts over, /exit or Ctrl-D leaves.",
                       style="dim"))
    while True:
        try:
            line = await anyio.to_thread.run_sync(console.input, Text("you> ", style="bold"))
        except EOFError:
            console.print()
            return
        text = line.strip()
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            session.reset()
            console.print(Text("(conversation cleared)", style="dim"))
        elif text == "/tools":
            _show_tools(session, console)
        else:
            try:
                await session.ask(text)
            except (OllamaFailed, GatewayFailed) as exc:
                # One failed answer need not end the chat; the next line may work.
                console.print(Text(f"error: {exc}", style="red"), soft_wrap=True)


def _show_tools(session: Agent, console: Console) -> None:
    names = [t.name for t in session.tools]
    console.print(Text(f"your tools: {', '.join(names) if names else '(none)'}", style="dim"), soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `agent` to the CLI."""
    app.command("agent")(agent)
