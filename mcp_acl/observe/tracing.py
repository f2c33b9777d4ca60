"""OpenTelemetry spans for a call: token verification, decision, audit write, tool run.

Off unless the standard `OTEL_*` environment asks for an exporter
(`OTEL_TRACES_EXPORTER`, or an OTLP endpoint). While off, `span()` hands
back one shared do-nothing context manager: no SDK is imported and no span
object is made. Span names and attributes never carry a token, an argument
or other free text from the caller; tool names are the catalogue's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

_OFF: AbstractContextManager[None] = nullcontext()
_tracer: Any = None

# Where the SDK's own spans (tools/call NAME) find the span of the HTTP request they belong to.
TRACE_CONTEXT_KEY = "mcp_acl.trace_context"
_PROPAGATED = (b"traceparent", b"tracestate")


class TracingConfigError(Exception):
    """The OTEL_* settings name an exporter that cannot be used."""


def enabled() -> bool:
    """True once a tracer is in use."""
    return _tracer is not None


def span(name: str, attributes: dict[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current one, or a no-op while tracing is off."""
    if _tracer is None:
        return _OFF
    return _traced(name, attributes)


@contextmanager
def _traced(name: str, attributes: dict[str, Any] | None, kind: Any = None, parent: Any = None) -> Iterator[Any]:
    from opentelemetry.trace import SpanKind, StatusCode

    # Not the SDK's exception recording: an exception's message may quote a
    # tool's arguments or a token claim. The class name says enough.
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind or SpanKind.INTERNAL, attributes=attributes,
        record_exception=False, set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(StatusCode.ERROR, exc.__class__.__name__)
            raise


def use_tracer(tracer: Any) -> None:
    """Trace with `tracer` (None: stop tracing); tests hand in one over an in-memory exporter."""
    global _tracer
    _tracer = tracer


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether the standard OTEL_* variables ask for traces to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def configure_from_env(environ: dict[str, str] | None = None) -> bool:
    """Start tracing when the OTEL_* variables ask for it; True if started. Raises TracingConfigError."""
    env = os.environ if environ is None else environ
    if not wanted(env):
        return False
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingConfigError(
            "OTEL_* asks for traces, but the OpenTelemetry SDK is not installed: pip install 'mcp-acl[otel]'"
        ) from None
    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself.
    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "mcp-acl")}))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    # Global too, so the MCP SDK's own spans (tools/call NAME) join the same traces.
    trace.set_tracer_provider(provider)
    use_tracer(provider.get_tracer("mcp_acl"))
    return True


def _exporter(name: str, env: Any) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        if protocol != "http/protobuf":
            raise TracingConfigError(f"OTLP protocol {protocol!r} is not supported here: use http/protobuf")
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TracingConfigError(
                "OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install 'mcp-acl[otel]'"
            ) from None
        # The endpoint, headers and timeout come from the OTEL_EXPORTER_OTLP_* variables.
        return OTLPSpanExporter()
    raise TracingConfigError(f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp, console or none")


class TracedHttp:
    """ASGI wrapper: one server span per HTTP request to `path`, its context left in the scope for the handlers."""

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        # The route's own path, never the request's (which the caller writes).
        self.path = path

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if _tracer is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import context, propagate
        from opentelemetry.trace import SpanKind

        method = scope.get("method", "")
        method = method if method in ("GET", "POST", "DELETE") else "OTHER"
        # A caller's W3C `traceparent` header makes this request part of its trace.
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ()) if k in _PROPAGATED}
        parent = propagate.extract(carrier) if carrier else None
        attributes = {"http.request.method": method, "url.path": self.path}
        with _traced(f"{method} {self.path}", attributes, SpanKind.SERVER, parent) as current:

            async def send_noting_status(message: Any) -> None:
                if message["type"] == "http.response.start":
                    current.set_attribute("http.response.status_code", message["status"])
                await send(message)

            await self.app({**scope, TRACE_CONTEXT_KEY: context.get_current()}, receive, send_noting_status)
