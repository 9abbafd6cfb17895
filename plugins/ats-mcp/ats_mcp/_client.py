"""Client side: ``ClientSession.send_request`` (every request: initialize, tools/*, resources/*, ...).

The span is made current while the request is in flight and its ``traceparent`` is written into the
request's ``params._meta``, where the server side picks it up as the remote parent. The transport is
known from the transport context manager the session runs in (``stdio_client`` -> ``pipe``,
``streamable_http_client`` -> ``tcp``, with its session id getter).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from ats.instrumentation import count_error

from ats_mcp._content import capture_enabled
from ats_mcp._record import McpOperation, running
from ats_mcp._shared import is_tool_error, request_attributes, result_attributes
from ats_mcp._transport import TRANSPORT, session_id

__all__ = ["make_send_request"]


class _ClientCall:
    __slots__ = ("op", "method", "capture")

    def __init__(self, op: McpOperation, method: str, capture: bool) -> None:
        self.op, self.method, self.capture = op, method, capture


def _begin(session: Any, request: Any) -> tuple[_ClientCall, Any] | None:
    rt = running()
    if rt is None:
        return None
    prepare_start = time.perf_counter_ns()
    data = request.model_dump(by_alias=True, mode="json", exclude_none=True)
    method = data.get("method")
    if not isinstance(method, str):
        return None
    capture = capture_enabled(rt)
    params = data.get("params")
    target, attrs, size = request_attributes(method, params, capture)
    request_id = getattr(session, "_request_id", None)
    if isinstance(request_id, int):
        attrs["jsonrpc.request.id"] = str(request_id)
    transport = TRANSPORT.get()
    if transport is not None:
        attrs["network.transport"] = transport[0]
    op = McpOperation(rt, "client", method, target, attrs)
    op.request_size = size
    op.start()
    try:
        assert op.context is not None
        if not isinstance(params, dict):
            params = data["params"] = {}
        meta = params.get("_meta")
        if not isinstance(meta, dict):
            meta = params["_meta"] = {}
        meta["traceparent"] = op.context.traceparent
        new_request = type(request).model_validate(data)
    except BaseException:
        op.abandon()
        raise
    op.prepare_ns = time.perf_counter_ns() - prepare_start
    return _ClientCall(op, method, capture), new_request


def _succeed(call: _ClientCall, result: Any) -> None:
    op = call.op
    data = result.model_dump(by_alias=True, mode="json", exclude_none=True) if hasattr(result, "model_dump") else result
    op.response_size = result_attributes(call.method, data, op.attributes, call.capture)
    if is_tool_error(call.method, data):
        op.fail("tool_error")
    version = data.get("protocolVersion") if call.method == "initialize" and isinstance(data, dict) else None
    if isinstance(version, str):
        op.attributes["mcp.protocol.version"] = version


def _failed(call: _ClientCall, exc: BaseException) -> None:
    error = getattr(exc, "error", None)  # McpError carries the JSON-RPC ErrorData
    code = getattr(error, "code", None)
    if isinstance(code, int):
        call.op.fail(str(code), str(code))
    else:
        call.op.fail(type(exc).__qualname__)


def _end(call: _ClientCall) -> None:
    try:
        sid = session_id()
        if sid is not None:
            call.op.attributes["mcp.session.id"] = sid
    except Exception as exc:
        count_error("mcp.client", exc)
    call.op.finish()


def make_send_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def send_request(self: Any, request: Any, result_type: Any, *args: Any, **kwargs: Any) -> Any:
        call = None
        try:
            begun = _begin(self, request)
            if begun is not None:
                call, request = begun
        except Exception as exc:
            count_error("mcp.client", exc)
        if call is None:
            return await original(self, request, result_type, *args, **kwargs)
        try:
            result = await original(self, request, result_type, *args, **kwargs)
        except BaseException as exc:
            try:
                _failed(call, exc)
            except Exception as record_exc:
                count_error("mcp.client", record_exc)
            _end(call)
            raise
        try:
            _succeed(call, result)
        except Exception as exc:
            count_error("mcp.client", exc)
        _end(call)
        return result

    send_request._ats_instrumented = True  # type: ignore[attr-defined]
    return send_request
