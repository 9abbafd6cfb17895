"""Server side: ``mcp.server.lowlevel.Server._handle_request``, which runs every request handler
(FastMCP's tools, resources and prompts included) and answers through ``RequestResponder.respond``.

The span's parent is the ``traceparent`` the client put in ``params._meta``; it is current while the
handler runs. The response (a result or a JSON-RPC error) is read where it is sent, so handler
exceptions that the SDK turns into error responses and ``isError`` tool results are both seen.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from ats.context import extract
from ats.instrumentation import count_error

from ats_mcp._content import capture_enabled
from ats_mcp._record import McpOperation, running
from ats_mcp._shared import is_tool_error, request_attributes, result_attributes

__all__ = ["make_handle_request"]

_SESSION_HEADER = "mcp-session-id"


class _ServerCall:
    __slots__ = ("op", "method", "capture")

    def __init__(self, op: McpOperation, method: str, capture: bool) -> None:
        self.op, self.method, self.capture = op, method, capture


def _begin(message: Any, req: Any) -> _ServerCall | None:
    rt = running()
    if rt is None:
        return None
    method = getattr(req, "method", None)
    if not isinstance(method, str):
        return None
    model = getattr(req, "params", None)
    params = model.model_dump(by_alias=True, mode="json", exclude_none=True) if model is not None else {}
    capture = capture_enabled(rt)
    target, attrs, size = request_attributes(method, params, capture)
    request_id = getattr(message, "request_id", None)
    if request_id is not None:
        attrs["jsonrpc.request.id"] = str(request_id)
    # Streamable HTTP hands the Starlette request along; stdio has none.
    http_request = getattr(getattr(message, "message_metadata", None), "request_context", None)
    attrs["network.transport"] = "tcp" if http_request is not None else "pipe"
    if http_request is not None:
        sid = http_request.headers.get(_SESSION_HEADER)
        if sid:
            attrs["mcp.session.id"] = sid
    meta = params.get("_meta")
    remote = extract({k: v for k, v in meta.items() if isinstance(v, str)}) if isinstance(meta, dict) else None
    op = McpOperation(rt, "server", method, target, attrs)
    op.request_size = size
    op.start(remote)
    return _ServerCall(op, method, capture)


def _on_response(call: _ServerCall, response: Any) -> None:
    op = call.op
    code = getattr(response, "code", None)
    if isinstance(code, int) and hasattr(response, "message"):  # ErrorData
        op.fail(str(code), str(code))
        op.response_size = len(str(getattr(response, "message", "")).encode())
        return
    result = getattr(response, "root", response)
    data = result.model_dump(by_alias=True, mode="json", exclude_none=True) if hasattr(result, "model_dump") else result
    op.response_size = result_attributes(call.method, data, op.attributes, call.capture)
    if is_tool_error(call.method, data):
        op.fail("tool_error")


def _observe_responses(call: _ServerCall, message: Any) -> None:
    """Routes the handler's answer through :func:`_on_response` on its way to the client."""
    respond = message.respond

    async def respond_observed(response: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            _on_response(call, response)
        except Exception as exc:
            count_error("mcp.server", exc)
        try:
            return await respond(response)
        finally:
            call.op.prepare_ns = time.perf_counter_ns() - started

    message.respond = respond_observed


def make_handle_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def _handle_request(self: Any, message: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        call = None
        try:
            call = _begin(message, req)
            if call is not None:
                _observe_responses(call, message)
        except Exception as exc:
            count_error("mcp.server", exc)
            if call is not None:
                call.op.abandon()
                call = None
        if call is None:
            return await original(self, message, req, *args, **kwargs)
        try:
            return await original(self, message, req, *args, **kwargs)
        except BaseException as exc:
            if "error.type" not in call.op.attributes:
                call.op.fail(type(exc).__qualname__)
            raise
        finally:
            call.op.finish()

    _handle_request._ats_instrumented = True  # type: ignore[attr-defined]
    return _handle_request
