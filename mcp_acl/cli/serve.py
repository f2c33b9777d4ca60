"""Serving commands: serve (HTTP), stdio, catalogue."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
from enum import Enum
from typing import Annotated
from urllib.parse import urlsplit

import typer

from mcp_acl.cli._common import DatabaseOpt, JsonOpt, err, fail, open_engine, out, print_json, settings_from_env, user_errors
from mcp_acl.cli.tokens import DEFAULT_CLI_CLIENT
from mcp_acl.config import Settings
from mcp_acl.printable import printable

HostOpt = Annotated[str, typer.Option("--host", help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option("--port", help="TCP port to listen on (0 picks a free one).")]
MetricsOpt = Annotated[
    bool, typer.Option("--metrics", envvar="MCP_ACL_METRICS", help="Serve Prometheus metrics at /metrics (docs/operations.md)."),
]


class LogFormat(str, Enum):
    """How `serve` writes its log lines."""

    text = "text"
    json = "json"


LogFormatOpt = Annotated[
    LogFormat,
    typer.Option("--log-format", envvar="MCP_ACL_LOG_FORMAT", help="text, or json: one JSON object per log line."),
]
GraceOpt = Annotated[
    float,
    typer.Option(
        "--shutdown-grace", min=0, help="On SIGTERM/SIGINT, seconds to let running calls finish before stopping.",
    ),
]
OllamaOpt = Annotated[
    bool, typer.Option("--ollama", help="Also speak Ollama's API at /ollama, with governed tools in every chat (docs/ollama.md)."),
]
OllamaUpstreamOpt = Annotated[
    str | None,
    typer.Option("--ollama-upstream", envvar="OLLAMA_HOST", help="The real Ollama that /ollama forwards to; default http://127.0.0.1:11434."),
]
TrustedClientOpt = Annotated[
    str | None,
    typer.Option("--ollama-trusted-client", help="A front-end client (e.g. open-webui) whose own token may name the user in --ollama-user-header."),
]
UserHeaderOpt = Annotated[
    str | None,
    typer.Option("--ollama-user-header", help="The header the trusted front-end names its signed-in user in, e.g. X-OpenWebUI-User-Email."),
]
DEFAULT_SHUTDOWN_GRACE = 10.0
# After the drain, how long uvicorn waits for connections still open before cancelling them.
CLOSE_TIMEOUT = 5


def _gateway(settings: Settings, engine):
    from mcp_acl.gateway.runtime import build_gateway
    from mcp_acl.gateway.toolload import ToolLoadError

    try:
        return build_gateway(settings, engine)
    except ToolLoadError as exc:
        fail(f"the tools could not be loaded: {exc}")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY)
    # on an accepted connection only when its socket says TCP, and accepted
    # sockets inherit the listener's protocol number. With Nagle on, the
    # last small write of a response (the chunked terminator after an SSE
    # event, the body after a JSON answer's headers) waits for the client's
    # delayed ACK: about 40 ms per call for a plain keep-alive client.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening now, so a client that reads the printed URL can connect
        # at once; connections wait in the backlog until uvicorn accepts.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock


def listen_url(sock: socket.socket) -> str:
    """The URL of /mcp on the bound socket, e.g. http://127.0.0.1:8000/mcp."""
    host, port = sock.getsockname()[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}/mcp"


def port_note(settings: Settings, url: str) -> str | None:
    """A hint when the server listens elsewhere than its resource URL (tokens name the resource URL)."""
    if urlsplit(settings.resource_url).port == urlsplit(url).port:
        return None
    return (
        f"note: tokens must name the resource {settings.resource_url}; to use {url} instead, "
        f"set MCP_ACL_RESOURCE_URL={url} for both `serve` and `token`"
    )


def build_app(settings: Settings, engine, *, metrics: bool = False, ollama=None):
    """The HTTP app, or a one-line error when the tools or the auth settings are wrong."""
    from mcp_acl.app import create_app
    from mcp_acl.auth import AuthConfigError

    try:
        return create_app(settings, engine, gateway=_gateway(settings, engine), metrics=metrics, ollama=ollama)
    except AuthConfigError as exc:
        fail(str(exc))


def start_observing(log_format: str) -> None:
    """JSON log lines when asked, and traces when the OTEL_* variables ask; a one-line error for a bad exporter."""
    from mcp_acl.observe import tracing

    if log_format == "json":
        from mcp_acl.observe.logs import use_json_lines

        use_json_lines()
    try:
        tracing.configure_from_env()
    except tracing.TracingConfigError as exc:
        fail(str(exc))


# uvicorn's fastest event loop and HTTP parser (measured in docs/benchmarks.md).
SERVE_LOOP = "uvloop"
SERVE_HTTP = "httptools"


def server_config(
    app, *, loop: str = SERVE_LOOP, http: str = SERVE_HTTP, log_level: str = "warning", log_format: str = "text",
):
    """uvicorn's settings for `app`: uvloop and httptools, the faster pair (bench/serving_stack.py, docs/benchmarks.md)."""
    import uvicorn

    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        loop = "asyncio"  # uvloop has no Windows build; the TCP_NODELAY fix in bind() covers asyncio
    # proxy_headers off: uvicorn otherwise believes X-Forwarded-For from any
    # loopback peer, so a local client could name any address it likes and
    # slip past the per-address sign-in back-off and refusal counting. The
    # address is the TCP peer (docs/oauth.md).
    # JSON lines: uvicorn configures no handlers of its own and its records
    # (access lines included, at info) reach the root logger's JSON handler.
    extra = {"log_config": None, "access_log": True} if log_format == "json" else {}
    if log_format == "json" and log_level == "warning":
        log_level = "info"
    return uvicorn.Config(
        app, loop=loop, http=http, log_level=log_level, lifespan="on", ws="none", proxy_headers=False,
        timeout_graceful_shutdown=CLOSE_TIMEOUT, **extra,
    )


def run_app(app, sock: socket.socket, *, grace: float = DEFAULT_SHUTDOWN_GRACE, log_format: str = "text") -> None:
    """Serve `app` on `sock` under uvicorn until SIGTERM or SIGINT, then shut down gracefully (cli/shutdown.py)."""
    from mcp_acl.cli.shutdown import DrainingServer

    DrainingServer(server_config(app, log_format=log_format), app, grace).run(sockets=[sock])


def ollama_settings(enabled: bool, upstream: str | None, trusted_client: str | None, user_header: str | None):
    """The /ollama endpoint's settings (None when off), or a one-line usage error."""
    from mcp_acl.agent.model import ollama_url
    from mcp_acl.ollama_endpoint import EndpointSettings

    if not enabled:
        if trusted_client or user_header:
            fail("--ollama-trusted-client and --ollama-user-header need --ollama")
        return None
    if user_header is not None and not user_header.strip():
        fail("--ollama-user-header needs a header name, e.g. X-OpenWebUI-User-Email")
    try:
        return EndpointSettings(ollama_url(upstream), trusted_client or None, user_header.strip() if user_header else None)
    except ValueError as exc:
        fail(str(exc))


def serve(
    database: DatabaseOpt = None, host: HostOpt = "127.0.0.1", port: PortOpt = 8000,
    metrics: MetricsOpt = False, log_format: LogFormatOpt = LogFormat.text, shutdown_grace: GraceOpt = DEFAULT_SHUTDOWN_GRACE,
    ollama: OllamaOpt = False, ollama_upstream: OllamaUpstreamOpt = None, ollama_trusted_client: TrustedClientOpt = None,
    ollama_user_header: UserHeaderOpt = None,
) -> None:
    """Serve MCP over HTTP at /mcp (OAuth-protected), with /healthz, /readyz and the discovery documents.

    On SIGTERM or SIGINT it stops taking new calls (503), lets the running
    ones finish (up to --shutdown-grace seconds), closes the sessions and
    exits 0; a second signal stops it at once. docs/operations.md says what
    to watch.

    With --ollama it also speaks Ollama's API at /ollama: point an Ollama
    app at it (OLLAMA_HOST=http://HOST:PORT/ollama) and each chat gets the
    caller's tools, decided and audited here (docs/ollama.md).

    Example: mcp-acl serve --port 8000
    Then: mcp-acl token --user alice   (and send it as `Authorization: Bearer …`)
    """
    endpoint = ollama_settings(ollama, ollama_upstream, ollama_trusted_client, ollama_user_header)
    settings = settings_from_env(database)
    engine = open_engine(database)
    start_observing(log_format.value)
    app = build_app(settings, engine, metrics=metrics, ollama=endpoint)
    sock = bind(host, port)
    url = listen_url(sock)
    out.print(f"mcp-acl serving {url}", highlight=False)
    if endpoint is not None:
        out.print(f"Ollama API at {url.removesuffix('/mcp')}/ollama (forwarding to {endpoint.upstream})", highlight=False, soft_wrap=True)
    if note := port_note(settings, url):
        if log_format is LogFormat.json:
            # Every line on stderr is then one JSON object.
            logging.getLogger(__name__).warning(note)
        else:
            err.print(note, highlight=False)
    run_app(app, sock, grace=shutdown_grace, log_format=log_format.value)


def stdio(database: DatabaseOpt = None) -> None:
    """Serve MCP over stdin/stdout for one caller, identified by the token in MCP_ACL_TOKEN.

    Example: MCP_ACL_TOKEN=$(mcp-acl token --user alice) mcp-acl stdio
    """
    import anyio

    from mcp_acl.gateway.stdio import TOKEN_ENV, StdioRefused, serve_stdio, verify_stdio_token

    settings = settings_from_env(database)
    engine = open_engine(database)
    from mcp_acl.auth import AuthConfigError

    try:
        identity, expires_at, token_id = anyio.run(verify_stdio_token, settings, engine, os.environ.get(TOKEN_ENV))
    except (StdioRefused, AuthConfigError) as exc:
        fail(str(exc))
    gateway = _gateway(settings, engine)
    anyio.run(serve_stdio, gateway, identity, expires_at, token_id)


def catalogue(
    user: Annotated[str | None, typer.Option("--user", help="The user (token subject) to show.")] = None,
    client: Annotated[
        str | None,
        typer.Option("--client", help=f"The OAuth client the user acts through; default for a user: {DEFAULT_CLI_CLIENT}, as `mcp-acl token` mints."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", metavar="TOKEN", help="Instead: the caller of this access token (its narrowing included).")
    ] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print what an identity would see (tools with its limits, resources, prompts) and its access-policy prompt.

    Example: mcp-acl catalogue --user bob --client ollama-agent
    """
    if token is not None and (user or client):
        fail("--token says who is calling: leave out --user and --client")
    from mcp_acl.gateway.invocation import utcnow
    from mcp_acl.gateway.views import CatalogueViews, catalogue_identity
    from mcp_acl.prompting import access_policy_text
    from mcp_acl.store import PolicyAdmin, PolicyLoader
    from mcp_acl.store.engine import StoreError

    if not user and not client and token is None:
        fail("give --user NAME, --client ID, or both (or --token TOKEN)")
    settings = settings_from_env(database)
    engine = open_engine(database)
    with user_errors():
        # A typo would otherwise show an empty catalogue, as if nothing were granted.
        admin = PolicyAdmin(engine)
        if user:
            admin.require_principal(f"user:{user}")
        if client:
            admin.require_principal(f"client:{client}")
    if user and not client:
        client = DEFAULT_CLI_CLIENT
    gateway = _gateway(settings, engine)
    if gateway.upstreams.connections:
        import anyio

        # Upstream tools are known only by asking each upstream (one that is down adds none).
        anyio.run(gateway.upstreams.add_tools_once, gateway.catalogue)
    identity = catalogue_identity(user, client, settings.expected_issuer, settings.required_scope)
    if token is not None:
        from mcp_acl.cli.token_identity import TokenNotAccepted, identity_of_token

        try:
            identity = identity_of_token(settings, engine, token)
        except TokenNotAccepted as exc:
            fail(f"--token: the gateway would refuse this token: {exc}")
    try:
        policy = PolicyLoader(engine).current()
    except StoreError as exc:
        fail(str(exc))
    now = utcnow()
    listing = CatalogueViews(gateway.catalogue).build(policy, identity, now)
    prompt = access_policy_text(policy, identity, listing, now)
    if as_json:
        print_json({
            "revision": policy.revision,
            "tools": [{"name": t.name, "description": t.description} for t in listing.tools],
            "resources": [r.uri for r in listing.resources],
            "resource_templates": [t.uri_template for t in listing.templates],
            "prompts": [p.name for p in listing.prompts],
            "access_policy_prompt": prompt,
        })
        return
    text = _catalogue_text(listing) + "\n\n--- prompt access-policy ---\n" + prompt
    # Line by line through printable: grant notes and tool descriptions are
    # stored text, and an escape sequence in one must not reach the terminal.
    sys.stdout.write("\n".join(printable(line) for line in text.split("\n")) + "\n")


def _catalogue_text(listing) -> str:
    lines = [f"policy revision {listing.revision}", "", f"tools ({len(listing.tools)}):"]
    for tool in listing.tools:
        lines.append(f"  {tool.name}")
        lines += [f"      {line}" for line in (tool.description or "").splitlines() if line.strip()]
    lines.append(f"resources ({len(listing.resources)}):")
    lines += [f"  {r.uri}" for r in listing.resources]
    lines.append(f"resource templates ({len(listing.templates)}):")
    lines += [f"  {t.uri_template}" for t in listing.templates]
    lines.append(f"prompts ({len(listing.prompts)}):")
    lines += [f"  {p.name}" for p in listing.prompts]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the serving commands to the CLI."""
    app.command()(serve)
    app.command()(stdio)
    app.command()(catalogue)
