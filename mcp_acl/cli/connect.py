"""`mcp-acl connect`: a small MCP client (the SDK's) to see a catalogue or make one call."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from mcp_acl.cli._common import JsonOpt, fail, print_json
from mcp_acl.config import DEFAULT_RESOURCE_URL

UrlOpt = Annotated[str, typer.Option("--url", help="The MCP endpoint.")]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="MCP_ACL_TOKEN", help="The access token (or MCP_ACL_TOKEN).", show_default=False),
]


async def _session(url: str, token: str, mode: str, call: str | None, args: dict[str, Any]) -> dict[str, Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            if call is not None:
                result = await client.call_tool(call, args)
                return {"is_error": result.is_error, "text": "\n".join(getattr(c, "text", "") for c in result.content)}
            return {
                "protocol": client.protocol_version,
                "tools": [{"name": t.name, "description": t.description} for t in (await client.list_tools()).tools],
                "resources": [r.uri for r in (await client.list_resources()).resources],
                "prompts": [p.name for p in (await client.list_prompts()).prompts],
            }


def _print(found: dict[str, Any]) -> None:
    if "text" in found:
        sys.stdout.write(found["text"] + "\n")
        return
    lines = [f"protocol {found['protocol']}", f"tools ({len(found['tools'])}):"]
    for tool in found["tools"]:
        lines.append(f"  {tool['name']}")
        lines += [f"      {line}" for line in (tool["description"] or "").splitlines() if line.strip()]
    lines.append(f"resources ({len(found['resources'])}):")
    lines += [f"  {uri}" for uri in found["resources"]]
    lines.append(f"prompts ({len(found['prompts'])}): {', '.join(found['prompts'])}")
    sys.stdout.write("\n".join(lines) + "\n")


def connect(
    token: TokenOpt = None,
    url: UrlOpt = DEFAULT_RESOURCE_URL,
    call: Annotated[str | None, typer.Option("--call", metavar="TOOL", help="Call this tool instead of listing.")] = None,
    args: Annotated[str, typer.Option("--args", metavar="JSON", help="The call's arguments, as a JSON object.")] = "{}",
    legacy: Annotated[bool, typer.Option("--legacy", help="Use the 2025-11-25 handshake instead of 2026-07-28.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Connect with the MCP SDK client and list what the token may use, or call one tool (exit 1 if refused).

    Example: mcp-acl connect --token "$(mcp-acl token --user bob)"
    Example: mcp-acl connect --call files.read --args '{"path": "reports/q3-sales.md"}'
    """
    import anyio
    import httpx2

    if not token:
        fail("give --token TOKEN or set MCP_ACL_TOKEN (mint one with `mcp-acl token --user NAME`)")
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as exc:
        fail(f"--args is not JSON: {exc.msg}")
    if not isinstance(arguments, dict):
        fail("--args must be a JSON object, e.g. '{\"path\": \"reports/q3-sales.md\"}'")
    try:
        found = anyio.run(_session, url, token, "legacy" if legacy else "auto", call, arguments)
    except httpx2.HTTPStatusError as exc:
        fail(f"{url} answered {exc.response.status_code}: {exc.response.headers.get('www-authenticate', exc.response.reason_phrase)}")
    except (httpx2.HTTPError, OSError) as exc:
        fail(f"cannot reach {url}: {exc.__class__.__name__}: {exc}")
    except Exception as exc:  # the SDK's errors (MCPError, ExceptionGroup of them) carry the server's message
        fail(f"{url}: {_refusal(url, token) or _message(exc)}")
    if as_json:
        print_json(found)
    else:
        _print(found)
    if found.get("is_error"):
        raise typer.Exit(1)


def _refusal(url: str, token: str) -> str | None:
    """Why the server refused the token, when it did (the SDK client reports only "an error response")."""
    import httpx2

    try:
        answer = httpx2.post(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}, json={}, timeout=10)
    except httpx2.HTTPError:
        return None
    if answer.status_code not in (401, 403):
        return None
    return f"the token was refused ({answer.status_code}): {answer.json().get('error_description', '')}"


def _message(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or exc.__class__.__name__


def register(app: typer.Typer) -> None:
    """Add `connect` to the CLI."""
    app.command()(connect)
