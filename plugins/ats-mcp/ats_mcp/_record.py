"""One MCP operation as ATS records it: a span, two ``bridge.message`` records and a duration.

Span names follow the MCP semantic conventions (``tools/call {tool}``, ``initialize``), which are not
dot-scoped event names, so spans are handed to the pipeline directly (as ``ats.otel`` does) rather
than through :class:`ats.Span` and the event-family registry. The kind travels in ``span.kind``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from ats import _runtime
from ats.context import SpanContext, attach, current_span, detach
from ats.instrumentation import count_error

__all__ = ["COMPONENT", "McpOperation", "record_operation"]

COMPONENT: Final = "ats-mcp"
BRIDGE_EVENT: Final = "bridge.message"
_INFO: Final = 9
_OK, _ERROR = 1, 2
_NOTIFICATION: Final = "notifications/"
#: Attributes that label the duration histograms (the conventions' metric attributes; never ids).
_METRIC_LABELS: Final = (
    "mcp.method.name", "error.type", "gen_ai.tool.name", "gen_ai.prompt.name", "gen_ai.operation.name",
    "rpc.response.status_code", "mcp.protocol.version", "network.transport",
)
#: The MCP semantic conventions' explicit bucket boundaries for both duration histograms (seconds).
DURATION_BUCKETS: Final = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_histograms: dict[str, Any] = {}


def _histogram(name: str) -> Any:
    hist = _histograms.get(name)
    if hist is None:
        from ats.metrics import histogram

        hist = _histograms[name] = histogram(name, "s", list(DURATION_BUCKETS))
    return hist


class McpOperation:
    """A request from one side's point of view (``side`` is ``client`` or ``server``).

    :meth:`start` makes the span current (so work done inside, e.g. a tool's database calls, nests
    under it); :meth:`finish` ends it, records it and the two bridge messages, and the duration.
    """

    __slots__ = ("rt", "side", "name", "attributes", "context", "parent", "token", "start_ns",
                 "request_size", "response_size", "prepare_ns", "error_type")

    def __init__(self, rt: Any, side: str, method: str, target: str | None, attributes: dict[str, Any]) -> None:
        self.rt = rt
        self.side = side
        self.name = f"{method} {target}" if target else method
        attributes["mcp.method.name"] = method
        attributes["span.kind"] = side
        self.attributes = attributes
        self.context: SpanContext | None = None
        self.parent: SpanContext | None = None
        self.token: Any = None
        self.start_ns = 0
        self.request_size = 0
        self.response_size = 0
        self.prepare_ns = 0
        self.error_type: str | None = None

    def start(self, remote_parent: SpanContext | None = None) -> None:
        self.start_ns = time.time_ns()
        parent = remote_parent if remote_parent is not None else current_span()
        trace_id = parent.trace_id if parent is not None else self.rt.pipeline.new_trace_id()
        from ats._native import Pipeline

        self.parent = parent
        self.context = SpanContext(trace_id, Pipeline.new_span_id(), parent.sampled if parent is not None else True)
        self.token = attach(self.context)

    def fail(self, error_type: str, status_code: str | None = None) -> None:
        self.error_type = error_type
        self.attributes["error.type"] = error_type
        if status_code is not None:
            self.attributes["rpc.response.status_code"] = status_code

    def abandon(self) -> None:
        """Detaches the span without recording it (ATS failed while preparing the request)."""
        if self.token is not None:
            detach(self.token)
            self.token = None

    def finish(self) -> None:
        """Detaches the span and records everything; never raises."""
        end_ns = time.time_ns()
        if self.token is not None:
            detach(self.token)
            self.token = None
        try:
            self._record(end_ns)
        except Exception as exc:
            count_error("mcp.record", exc)

    def _record(self, end_ns: int) -> None:
        ctx, parent = self.context, self.parent
        if ctx is None:
            return
        record_operation(
            self.rt.pipeline, self.side, self.name, ctx.trace_id, ctx.span_id,
            parent.span_id if parent is not None else 0, parent.sampled if parent is not None else True,
            parent.remote if parent is not None else False, self.start_ns, end_ns, self.error_type is not None,
            self.attributes, self.request_size, self.response_size, self.prepare_ns,
        )


def record_operation(pipeline: Any, side: str, name: str, trace_id: str, span_id: int, parent_span_id: int,
                     parent_sampled: bool, parent_remote: bool, start_ns: int, end_ns: int, failed: bool,
                     attrs: dict[str, Any], request_size: int, response_size: int, prepare_ns: int) -> None:
    """Records one operation seen from ``side``: the span, the two ``bridge.message`` records (the
    request and its answer) and the duration histogram value. ``prepare_ns`` is the time this side
    spent on the message it sends (see below)."""
    pipeline.record_span(
        name, COMPONENT, trace_id, span_id, parent_span_id, start_ns, end_ns, _ERROR if failed else _OK, attrs,
        parent_sampled=parent_sampled, parent_remote=parent_remote,
    )
    total_ms = (end_ns - start_ns) / 1e6
    client = side == "client"
    request_id = attrs.get("jsonrpc.request.id", "")
    method = attrs["mcp.method.name"]
    # The request leaves the client and arrives at the server; the response goes the other way.
    # processing_time_ms is the time this side spent on the message: preparing and sending the
    # request (client) or handling it (server); for the response, the wait for it (client) or
    # writing it (server).
    request_ms = prepare_ns / 1e6 if client else total_ms
    response_ms = total_ms if client else prepare_ns / 1e6
    _bridge(pipeline, side, trace_id, span_id, "OUTBOUND" if client else "INBOUND", request_id,
            "notification" if method.startswith(_NOTIFICATION) else "request", method, request_size, request_ms,
            end_ns)
    if not method.startswith(_NOTIFICATION):  # a notification has no answer
        _bridge(pipeline, side, trace_id, span_id, "INBOUND" if client else "OUTBOUND", request_id,
                "error" if "rpc.response.status_code" in attrs else "response", method, response_size,
                response_ms, end_ns)
    labels = {k: attrs[k] for k in _METRIC_LABELS if k in attrs}
    _histogram(f"mcp.{side}.operation.duration").record((end_ns - start_ns) / 1e9, labels)


def _bridge(pipeline: Any, side: str, trace_id: str, span_id: int, direction: str, message_id: Any,
            message_type: str, method: str, size: int, processing_ms: float, ts_ns: int) -> None:
    client = side == "client"
    source = "client" if client == (direction == "OUTBOUND") else "server"
    pipeline.emit_log(
        BRIDGE_EVENT, COMPONENT, _INFO, "", ts_ns, trace_id, span_id,
        {
            "bridge_type": "MCP",
            "direction": direction,
            "message_id": str(message_id),
            "source": source,
            "destination": "server" if source == "client" else "client",
            "message_type": message_type,
            "payload_size_bytes": size,
            "processing_time_ms": round(processing_ms, 3),
            "mcp.method.name": method,
        },
    )


def running() -> Any:
    """The running runtime, or None (nothing is recorded then)."""
    return _runtime.current()
