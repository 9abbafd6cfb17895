"""ATS plugin: instrumentation of the Model Context Protocol Python SDK (``mcp``), both sides.

Per request (MCP semantic conventions, ``docs/gen-ai/mcp.md`` at semconv v1.41):

* client (``ClientSession``: initialize, tools/list, tools/call, resources/read, prompts/get and every
  other request) -> a CLIENT span ``{mcp.method.name} {target}`` (``tools/call add``, ``initialize``);
* server (``lowlevel.Server``, under FastMCP: the tool, resource and prompt handlers) -> a SERVER span
  whose parent is the client span, found in ``params._meta.traceparent``;
* attributes ``mcp.method.name``, ``jsonrpc.request.id``, ``network.transport`` (``pipe`` for stdio,
  ``tcp`` for streamable HTTP), ``mcp.session.id`` (HTTP), ``gen_ai.tool.name`` /
  ``gen_ai.prompt.name`` / ``mcp.resource.uri``, ``gen_ai.operation.name = execute_tool``,
  ``mcp.protocol.version`` (client initialize); ``error.type = tool_error`` for an ``isError`` result,
  the JSON-RPC error code (also ``rpc.response.status_code``) for an error response;
* tool and prompt arguments and results only as ``mcp.arguments.hash`` / ``.size_bytes`` / ``.names``
  and ``mcp.result.hash`` / ``.size_bytes`` (seed 002): the text only with ``mcp.capture_content``,
  scrubbed, under ``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``;
* two seed 003 ``bridge.message`` records (the request and the response, each with ``bridge_type``,
  ``direction``, ``message_id``, ``source``, ``destination``, ``message_type``,
  ``payload_size_bytes``, ``processing_time_ms``) and one ``mcp.client.operation.duration`` /
  ``mcp.server.operation.duration`` histogram value in seconds.

Supported: ``mcp`` 1.10 to 2.x. On 1.x (no spans of its own) the plugin makes the spans; ``mcp`` 2
(``MCPServer``) records OpenTelemetry spans itself, and ATS builds on those instead of adding a second
span per message (:mod:`ats_mcp._v2`; needs ``opentelemetry-sdk``): the same names, attributes,
records and metrics as above, with the SDK's span ids. ``mcp`` 2's server also traces the messages
it handles itself (``initialize``, notifications), so those have SERVER spans too.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType
from typing import Any, Final

from ats import hookimpl
from ats.instrumentation import Instrumentor, UnsupportedVersionWarning

from ats_mcp._client import make_send_request
from ats_mcp._server import make_handle_request
from ats_mcp._transport import wrap_transport

__all__ = ["McpInstrumentor", "ats_instrumentors", "instrumentor"]

__version__ = "0.1.0"

#: Transport context managers: (module, function, network.transport).
_TRANSPORTS: Final = (
    ("mcp.client.stdio", "stdio_client", "pipe"),
    ("mcp.client.streamable_http", "streamable_http_client", "tcp"),
    ("mcp.client.streamable_http", "streamablehttp_client", "tcp"),
)


class McpInstrumentor(Instrumentor):
    """1.x: patches ``ClientSession.send_request``, ``Server._handle_request`` and the client transports;
    2.x: routes the SDK's tracer, adds a server middleware and wraps ``send_request`` and the transports."""

    name = "mcp"
    target_modules = ("mcp",)
    distribution = "mcp"
    supported_versions = ">=1.10,<3"

    def __init__(self) -> None:
        super().__init__()
        self.bridge: Any = None

    def _patch(self, module: ModuleType) -> None:
        import importlib

        version = self.target_version(module) or ""
        if version.split(".", 1)[0] == "2":
            from ats_mcp import _v2

            self.bridge = _v2.install(self, module, version)
            if self.bridge is None:
                warnings.warn("ats-mcp: mcp 2 needs opentelemetry-sdk (pip install opentelemetry-sdk); "
                              "MCP calls are not traced", UnsupportedVersionWarning, stacklevel=2)
                return
        else:
            from mcp.client.session import ClientSession
            from mcp.server.lowlevel.server import Server

            self.replace(ClientSession, "send_request", make_send_request(ClientSession.send_request))
            self.replace(Server, "_handle_request", make_handle_request(Server._handle_request))
        for module_name, function, transport in _TRANSPORTS:
            owner = importlib.import_module(module_name)
            original = getattr(owner, function, None)
            if original is None or getattr(original, "_ats_instrumented", False):
                continue
            wrapped = wrap_transport(original, transport)
            self.replace(owner, function, wrapped)
            # Re-exports made before the patch (``mcp.stdio_client``) point at the same function.
            for alias_owner in (module, sys.modules.get("mcp.client")):
                if alias_owner is not None and getattr(alias_owner, function, None) is original:
                    self.replace(alias_owner, function, wrapped)

    def _unpatch(self, module: ModuleType) -> None:
        if self.bridge is not None:
            from ats import otel

            from ats_mcp._v2 import SCOPE

            self.bridge.enabled = False
            self.bridge = None
            otel.release_scope(SCOPE)
        self.restore()


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = McpInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the mcp instrumentor to the ATS plugin host."""
    return [instrumentor]
