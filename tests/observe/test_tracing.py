"""OpenTelemetry traces of a call: one trace from the HTTP request to the tool, no token or argument in it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.harness import LiveServer, connect
from mcp_acl.app import create_app
from mcp_acl.observe import tracing

SECRET_PATH = "reports/q3.md"
_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans():
    """Tracing on, into memory, for one test (the MCP SDK's spans too: the global provider is set once)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(_PROVIDER)
    _EXPORTER.clear()
    tracing.use_tracer(_PROVIDER.get_tracer("mcp_acl"))
    try:
        yield _EXPORTER
    finally:
        tracing.use_tracer(None)
        _EXPORTER.clear()


def test_tracing_is_off_without_otel_settings_and_costs_one_shared_no_op():
    assert tracing.configure_from_env({}) is False
    assert not tracing.enabled()
    assert tracing.span("a") is tracing.span("b")
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is False
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is True
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) is False


ERA = "2026-07-28"
CALL = {
    "jsonrpc": "2.0", "id": 7, "method": "tools/call",
    "params": {
        "name": "files.read", "arguments": {"path": SECRET_PATH},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": ERA,
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}
MODERN = {
    "Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": ERA,
    "Mcp-Method": "tools/call", "Mcp-Name": "files.read",
}


def _by_name(finished) -> dict[str, list]:
    found: dict[str, list] = {}
    for one in finished:
        found.setdefault(one.name, []).append(one)
    return found


def _assert_no_secrets(finished, token: str) -> None:
    for one in finished:
        text = one.to_json()
        assert token not in text and token.split(".")[2] not in text and SECRET_PATH not in text, one.name


async def test_a_call_is_one_trace_from_the_token_to_the_tool(sqlite_world, spans):
    import httpx2

    token = sqlite_world.token("alice")
    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway())
    with LiveServer(app) as live:
        # A caller that sends no trace context of its own (a plain HTTP client, 2026-07-28).
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **MODERN}) as http:
            answer = await http.post(live.mcp_url, json=CALL)
    assert answer.status_code == 200 and '"isError":false' in answer.text.replace(" ", ""), answer.text
    finished = spans.get_finished_spans()
    named = _by_name(finished)
    [http_span] = named["POST /mcp"]
    [verify] = named["mcp_acl.token.verify"]
    [call] = named["tools/call files.read"]
    [decide] = named["mcp_acl.decide"]
    [audit] = named["mcp_acl.audit.write"]
    [run] = named["mcp_acl.tool.run"]
    assert http_span.parent is None and http_span.kind == trace.SpanKind.SERVER
    assert verify.parent.span_id == http_span.context.span_id
    assert call.parent.span_id == http_span.context.span_id
    for child in (decide, audit, run):
        assert child.parent.span_id == call.context.span_id
    assert {s.context.trace_id for s in finished} == {http_span.context.trace_id}
    # In the order of the hot path.
    assert verify.end_time <= call.start_time and decide.end_time <= audit.start_time
    assert audit.end_time <= run.start_time <= run.end_time <= call.end_time
    assert run.attributes["mcp_acl.tool"] == "files.read"
    assert http_span.attributes["http.response.status_code"] == 200
    _assert_no_secrets(finished, token)


async def test_a_traceparent_header_puts_the_request_in_the_callers_trace(sqlite_world, spans):
    import httpx2

    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"Authorization": f"Bearer {sqlite_world.token('alice')}", "traceparent": f"00-{caller_trace}-{caller_span}-01", **MODERN}
    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway())
    with LiveServer(app) as live:
        async with httpx2.AsyncClient(headers=headers) as http:
            answer = await http.post(live.mcp_url, json=CALL)
    assert answer.status_code == 200
    [http_span] = _by_name(spans.get_finished_spans())["POST /mcp"]
    assert (http_span.context.trace_id, http_span.parent.span_id) == (int(caller_trace, 16), int(caller_span, 16))
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {int(caller_trace, 16)}


async def test_a_caller_that_sends_its_trace_context_gets_the_call_in_its_own_trace(sqlite_world, spans):
    token = sqlite_world.token("alice")
    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway())
    with LiveServer(app) as live:
        # The SDK's client, traced in this process, sends its span in the request's _meta.
        async with connect(live.mcp_url, token) as alice:
            await alice.list_tools()
            spans.clear()
            result = await alice.call_tool("files.read", {"path": SECRET_PATH})
    assert not result.is_error
    finished = spans.get_finished_spans()
    named = _by_name(finished)
    [sent] = named["MCP send tools/call files.read"]
    [call] = named["tools/call files.read"]
    assert call.parent.span_id == sent.context.span_id
    for name in ("mcp_acl.decide", "mcp_acl.audit.write", "mcp_acl.tool.run"):
        [child] = named[name]
        assert child.parent.span_id == call.context.span_id
    _assert_no_secrets(finished, token)


async def test_a_refused_token_is_traced_without_its_value(sqlite_world, spans):
    import httpx2

    bad = sqlite_world.token("alice")[:-8] + "AAAAAAAA"
    app = create_app(sqlite_world.settings, sqlite_world.engine, gateway=sqlite_world.gateway())
    with LiveServer(app) as live:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {bad}"}) as http:
            answer = await http.post(live.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert answer.status_code == 401
    [verify] = [s for s in spans.get_finished_spans() if s.name == "mcp_acl.token.verify"]
    assert verify.status.status_code == trace.StatusCode.ERROR and verify.status.description == "TokenRejected"
    assert all(bad.split(".")[2] not in s.to_json() for s in spans.get_finished_spans())


def test_serve_refuses_an_exporter_it_does_not_know_in_one_line(sqlite_world, subprocess_env):
    env = {**subprocess_env, "OTEL_TRACES_EXPORTER": "carrier-pigeon"}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_acl", "serve", "--port", "0", "--database", sqlite_world.database_url],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: OTEL_TRACES_EXPORTER='carrier-pigeon' is not supported: use otlp, console or none"
    ]
