"""``mcp`` 2.x: ATS builds on the SDK's own OpenTelemetry spans instead of making a second span.

``mcp`` 2 opens a CLIENT span per request it sends (``mcp.shared.jsonrpc_dispatcher``, named
``MCP send {method} {target}``) and a SERVER span per message it receives (``OpenTelemetryMiddleware``
in ``Server.middleware``), both on the tracer ``mcp.shared._otel._tracer`` (scope ``mcp-python-sdk``),
and carries ``traceparent`` in ``params._meta`` itself. This module:

* routes that tracer: to the program's own OpenTelemetry SDK ``TracerProvider`` when one is set
  globally (its exporters keep getting the spans; :class:`SpanBridge` is added to it once), else to a
  private SDK provider that only feeds :class:`SpanBridge` (no global state is touched);
* adds what the SDK's spans lack, from the places that know it: a server middleware inside the SDK's
  one (argument/result hashes, sizes and names, ``network.transport``, ``mcp.session.id``) and a
  wrapper of ``JSONRPCDispatcher.send_raw_request``, where the SDK makes its CLIENT span (the same,
  client side, from the plain dicts already there; server-initiated requests go through it too);
* records each SDK span once through ATS, with the SDK's ids (so the program's OpenTelemetry backend
  and ATS show the same trace), the conventions' name ``{mcp.method.name} {target}``, the seed 003
  ``bridge.message`` records and the duration histograms (:func:`ats_mcp._record.record_operation`).

Needs ``opentelemetry-sdk``; without it the instrumentor warns once and patches nothing.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from ats.instrumentation import count_error

from ats_mcp._content import capture_enabled
from ats_mcp._record import record_operation, running
from ats_mcp._shared import is_tool_error, request_attributes, result_attributes
from ats_mcp._transport import TRANSPORT, make_http_transport_init, session_id

__all__ = ["SCOPE", "SpanBridge", "install"]

#: The instrumentation scope of the SDK's spans.
SCOPE: Final = "mcp-python-sdk"
_SESSION_HEADER: Final = "mcp-session-id"
#: Extras of spans still open, by span id; bounded so a span that never ends cannot grow it.
_MAX_PENDING: Final = 4096


class _Extras:
    """What ATS adds to one SDK span, gathered while it is open."""

    __slots__ = ("attrs", "capture", "request_size", "response_size", "prepare_ns", "began_ns", "span", "finished",
                 "error", "failed")

    def __init__(self, attrs: dict[str, Any], request_size: int, capture: bool) -> None:
        self.attrs = attrs
        self.capture = capture
        self.request_size = request_size
        self.response_size = 0
        self.prepare_ns = 0
        self.began_ns = time.perf_counter_ns()
        #: The ended SDK span, when it ended before the client wrapper saw the result.
        self.span: Any = None
        self.finished = False
        #: The exception class that ended the call, when the SDK span says no more than "error".
        self.error: str | None = None
        #: The call failed in a way the SDK's span may not show (an ``isError`` tool result; on
        #: ``mcp`` 2.0 an error response); ``attrs`` carries the ``error.type``.
        self.failed = False


#: The client request being sent by this task (set by the ``send_raw_request`` wrapper).
_CLIENT_CALL: contextvars.ContextVar[_Extras | None] = contextvars.ContextVar("ats_mcp_v2_call", default=None)


def _sdk_span_processor_base() -> type:
    from opentelemetry.sdk.trace import SpanProcessor

    return SpanProcessor


class SpanBridge:
    """Records the ``mcp-python-sdk`` spans through ATS (other scopes are ignored).

    An SDK ``SpanProcessor`` (the class is completed with the SDK's base in :func:`make_bridge`, so
    the SDK's private hooks keep their defaults)."""

    def __init__(self) -> None:
        self.enabled = True
        self._lock = threading.Lock()
        self._pending: dict[int, _Extras] = {}

    # --- what the wrappers register ----------------------------------------------------------------

    def expect(self, span_id: int, extras: _Extras) -> None:
        with self._lock:
            if len(self._pending) < _MAX_PENDING:
                self._pending[span_id] = extras

    def _take(self, span_id: int) -> _Extras | None:
        with self._lock:
            return self._pending.pop(span_id, None)

    # --- the SpanProcessor interface -------------------------------------------------------------

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        try:
            if not self.enabled or span.instrumentation_scope is None or span.instrumentation_scope.name != SCOPE:
                return
            call = _CLIENT_CALL.get()
            if call is not None and span.context is not None and call.span is None and not call.finished:
                call.prepare_ns = time.perf_counter_ns() - call.began_ns
                self.expect(span.context.span_id, call)
        except Exception as exc:
            count_error("mcp.otel_start", exc)

    def on_end(self, span: Any) -> None:
        try:
            if not self.enabled or span.instrumentation_scope is None or span.instrumentation_scope.name != SCOPE:
                return
            extras = self._take(span.context.span_id) if span.context is not None else None
            if extras is not None and _is_client(span) and not extras.finished:
                extras.span = span  # the wrapper adds the result, then records
                return
            record(span, extras)
        except Exception as exc:
            count_error("mcp.otel_end", exc)

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_bridge() -> Any:
    cls = type("ATSMcpSpanBridge", (SpanBridge, _sdk_span_processor_base()), {"__module__": __name__})
    return cls()


def _is_client(span: Any) -> bool:
    return getattr(span.kind, "name", "") == "CLIENT"


def record(span: Any, extras: _Extras | None) -> None:
    """One SDK span (with what ATS gathered for it) as ATS's MCP operation."""
    rt = running()
    ctx = span.context
    if rt is None or ctx is None:
        return
    sdk_attrs = dict(span.attributes or {})
    method = sdk_attrs.get("mcp.method.name")
    if not isinstance(method, str):
        return
    attrs: dict[str, Any] = {k: v for k, v in sdk_attrs.items() if isinstance(v, (str, int, float, bool))}
    if extras is not None:
        attrs.update(extras.attrs)
    side = "client" if _is_client(span) else "server"
    attrs["span.kind"] = side
    target = attrs.get("gen_ai.tool.name") or attrs.get("gen_ai.prompt.name")
    name = f"{method} {target}" if isinstance(target, str) and target else method
    failed = getattr(span.status.status_code, "name", "") == "ERROR"
    if extras is not None and extras.failed:
        failed = True
    if failed and "error.type" not in attrs:
        attrs["error.type"] = (extras.error if extras is not None else None) or "_OTHER"
    parent = span.parent
    start_ns = span.start_time or 0
    record_operation(
        rt.pipeline, side, name, f"{ctx.trace_id:032x}", ctx.span_id, parent.span_id if parent is not None else 0,
        bool(parent.trace_flags.sampled) if parent is not None else True,
        bool(parent.is_remote) if parent is not None else False,
        start_ns, span.end_time or start_ns, failed, attrs,
        extras.request_size if extras is not None else 0, extras.response_size if extras is not None else 0,
        extras.prepare_ns if extras is not None else 0,
    )


# --- the tracer the SDK's spans are made with ------------------------------------------------------


class _Routing:
    """Picks the provider for each span: the program's SDK provider if it set one, else ATS's own."""

    def __init__(self, bridge: Any, version: str) -> None:
        self.bridge = bridge
        self.version = version
        self._private: Any = None
        self._tracers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def tracer(self) -> Any:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = self._private_provider()
        tracer = self._tracers.get(provider)
        if tracer is None:
            with self._lock:
                tracer = self._tracers.get(provider)
                if tracer is None:
                    if provider is not self._private:
                        provider.add_span_processor(self.bridge)
                    tracer = self._tracers[provider] = provider.get_tracer(SCOPE, self.version)
        return tracer

    def _private_provider(self) -> Any:
        if self._private is None:
            from opentelemetry.sdk.trace import TracerProvider

            with self._lock:
                if self._private is None:
                    private = TracerProvider()
                    private.add_span_processor(self.bridge)
                    self._private = private
        return self._private


def make_tracer(routing: _Routing) -> Any:
    """An OpenTelemetry ``Tracer`` that hands every call to the provider :class:`_Routing` picks."""
    from opentelemetry.trace import Tracer

    class RoutingTracer(Tracer):
        def start_span(self, *args: Any, **kwargs: Any) -> Any:
            return routing.tracer().start_span(*args, **kwargs)

        # The SDK's own signature is long and its return type private; every argument is passed on.
        @contextmanager
        def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[Any]:  # type: ignore[override]
            with routing.tracer().start_as_current_span(*args, **kwargs) as span:
                yield span

    return RoutingTracer()


# --- server: a middleware inside the SDK's OpenTelemetry one ---------------------------------------


class ServerMiddleware:
    """``(ctx, call_next)``: registers the request's hashes, sizes and transport for the current span."""

    def __init__(self, bridge: SpanBridge) -> None:
        self.bridge = bridge

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        extras = None
        try:
            extras = self._begin(ctx)
        except Exception as exc:
            count_error("mcp.server", exc)
        if extras is None:
            return await call_next(ctx)
        try:
            result = await call_next(ctx)
        except BaseException as exc:
            extras.error = type(exc).__qualname__
            raise
        try:
            data = result.model_dump(by_alias=True, mode="json", exclude_none=True) \
                if hasattr(result, "model_dump") else result
            extras.response_size = result_attributes(ctx.method, data, extras.attrs, extras.capture)
        except Exception as exc:
            count_error("mcp.server", exc)
        return result

    def _begin(self, ctx: Any) -> _Extras | None:
        from opentelemetry import trace

        rt = running()
        if rt is None:
            return None
        sc = trace.get_current_span().get_span_context()
        if not sc.is_valid or not isinstance(getattr(ctx, "method", None), str):
            return None
        params = dict(ctx.params) if ctx.params else {}
        capture = capture_enabled(rt)
        _, attrs, size = request_attributes(ctx.method, params, capture)
        # Streamable HTTP hands the Starlette request along; stdio has none.
        http_request = getattr(ctx, "request", None)
        headers = getattr(http_request, "headers", None)
        attrs["network.transport"] = "tcp" if headers is not None else "pipe"
        if headers is not None:
            sid = headers.get(_SESSION_HEADER)
            if sid:
                attrs["mcp.session.id"] = sid
        extras = _Extras(attrs, size, capture)
        self.bridge.expect(sc.span_id, extras)
        return extras


# --- client: JSONRPCDispatcher.send_raw_request (the transports are in _transport) ---------------------


def make_send_raw_request(original: Callable[..., Any], bridge: SpanBridge) -> Callable[..., Any]:
    """``JSONRPCDispatcher.send_raw_request``: the SDK makes its CLIENT span in here, with the
    request's params and the raw result already plain dicts (nothing to serialise again)."""

    @functools.wraps(original)
    async def send_raw_request(self: Any, method: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        extras = None
        try:
            rt = running()
            if rt is not None and isinstance(method, str):
                capture = capture_enabled(rt)
                _, attrs, size = request_attributes(method, dict(params) if params else None, capture)
                transport = TRANSPORT.get()
                if transport is not None:
                    attrs["network.transport"] = transport[0]
                extras = _Extras(attrs, size, capture)
        except Exception as exc:
            count_error("mcp.client", exc)
        if extras is None:
            return await original(self, method, params, *args, **kwargs)
        token = _CLIENT_CALL.set(extras)
        try:
            raw = await original(self, method, params, *args, **kwargs)
        except BaseException as exc:
            _failed(extras, exc)
            _finish(bridge, extras)
            raise
        finally:
            _CLIENT_CALL.reset(token)
        try:
            extras.response_size = result_attributes(method, raw, extras.attrs, extras.capture)
            if is_tool_error(method, raw):
                extras.failed = True
                extras.attrs["error.type"] = "tool_error"
            version = raw.get("protocolVersion") if method == "initialize" and isinstance(raw, dict) else None
            if isinstance(version, str):
                extras.attrs["mcp.protocol.version"] = version
        except Exception as exc:
            count_error("mcp.client", exc)
        _finish(bridge, extras)
        return raw

    send_raw_request._ats_instrumented = True  # type: ignore[attr-defined]
    return send_raw_request


def _failed(extras: _Extras, exc: BaseException) -> None:
    extras.failed = True
    code = getattr(getattr(exc, "error", None), "code", None)  # MCPError carries the JSON-RPC ErrorData
    if isinstance(code, int):
        extras.attrs["error.type"] = extras.attrs["rpc.response.status_code"] = str(code)
    else:
        extras.attrs["error.type"] = type(exc).__qualname__


def _finish(bridge: SpanBridge, extras: _Extras) -> None:
    """The wrapper is done: record the span now if it already ended (else ``on_end`` will)."""
    try:
        extras.finished = True
        sid = session_id()
        if sid is not None:
            extras.attrs["mcp.session.id"] = sid
        if extras.span is not None:
            span, extras.span = extras.span, None
            record(span, extras)
    except Exception as exc:
        count_error("mcp.client", exc)


def make_server_init(original: Callable[..., Any], middleware: ServerMiddleware) -> Callable[..., Any]:
    """``Server.__init__`` that puts ATS's middleware right inside the SDK's OpenTelemetry one."""

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            chain = self.middleware
            at = next((i + 1 for i, m in enumerate(chain) if type(m).__name__ == "OpenTelemetryMiddleware"), None)
            if at is not None:
                chain.insert(at, middleware)
        except Exception as exc:
            count_error("mcp.server", exc)

    return __init__


def install(instrumentor: Any, module: Any, version: str) -> SpanBridge | None:
    """Patches ``mcp`` 2.x; None (and nothing patched) without ``opentelemetry-sdk``."""
    import importlib

    try:
        importlib.import_module("opentelemetry.sdk.trace")
    except ImportError:
        return None
    import mcp.shared._otel as otel
    from mcp.client.streamable_http import StreamableHTTPTransport
    from mcp.server.lowlevel.server import Server
    from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher

    from ats import otel as ats_otel

    bridge: SpanBridge = make_bridge()
    ats_otel.claim_scope(SCOPE)
    instrumentor.replace(otel, "_tracer", make_tracer(_Routing(bridge, version)))
    instrumentor.replace(Server, "__init__", make_server_init(Server.__init__, ServerMiddleware(bridge)))
    instrumentor.replace(JSONRPCDispatcher, "send_raw_request",
                         make_send_raw_request(JSONRPCDispatcher.send_raw_request, bridge))
    instrumentor.replace(StreamableHTTPTransport, "__init__",
                         make_http_transport_init(StreamableHTTPTransport.__init__))
    return bridge
