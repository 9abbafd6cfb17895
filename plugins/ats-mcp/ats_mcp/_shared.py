"""Request attributes both sides derive the same way from a JSON-RPC request's method and params."""

from __future__ import annotations

from typing import Any, Final

from ats_mcp._content import ARGUMENTS, RESULT, describe

__all__ = ["TOOL_CALL", "request_attributes", "result_attributes"]

TOOL_CALL: Final = "tools/call"
_PROMPT_GET: Final = "prompts/get"
_RESOURCE_METHODS: Final = frozenset({"resources/read", "resources/subscribe", "resources/unsubscribe"})
#: Result fields that describe the message rather than the tool's or prompt's answer.
_ENVELOPE: Final = frozenset({"_meta", "resultType"})


def request_attributes(method: str, params: Any, capture: bool) -> tuple[str | None, dict[str, Any], int]:
    """(span name target, attributes, request payload size) for a request's ``params`` dict."""
    attrs: dict[str, Any] = {}
    target = None
    size = 0
    if not isinstance(params, dict):
        return None, attrs, 0
    name = params.get("name")
    if method == TOOL_CALL and isinstance(name, str):
        target = attrs["gen_ai.tool.name"] = name
        attrs["gen_ai.operation.name"] = "execute_tool"
    elif method == _PROMPT_GET and isinstance(name, str):
        target = attrs["gen_ai.prompt.name"] = name
    elif method in _RESOURCE_METHODS and isinstance(params.get("uri"), str):
        attrs["mcp.resource.uri"] = params["uri"]
    if method in (TOOL_CALL, _PROMPT_GET):
        size = describe(ARGUMENTS, params.get("arguments") or {}, attrs, capture=capture,
                        text_allowed=method == TOOL_CALL)
    else:
        payload = {k: v for k, v in params.items() if k != "_meta"}
        from ats_mcp._content import canonical_json

        size = len(canonical_json(payload))
    return target, attrs, size


def result_attributes(method: str, result: Any, attrs: dict[str, Any], capture: bool) -> int:
    """Adds the result's hash and size (tools and prompts); :returns: the result payload size."""
    if method in (TOOL_CALL, _PROMPT_GET):
        if isinstance(result, dict):
            # Envelope fields, not the payload: the server's handler result lacks what the SDK adds on
            # the wire (mcp 2's resultType), and both sides must hash the same value.
            result = {k: v for k, v in result.items() if k not in _ENVELOPE}
        return describe(RESULT, result, attrs, capture=capture, text_allowed=method == TOOL_CALL)
    from ats_mcp._content import canonical_json

    return len(canonical_json(result))


def is_tool_error(method: str, result: Any) -> bool:
    return method == TOOL_CALL and isinstance(result, dict) and result.get("isError") is True
