"""An MCP server run with ATS (``ats.init()``): ``server.py stdio`` or ``server.py http PORT``.

FastMCP on ``mcp`` 1, MCPServer on ``mcp`` 2: the same tools, resource and prompt.
"""

from __future__ import annotations

import os
import signal
import sys
from importlib.metadata import version

import ats

ats.init()


def _stop(*_: object) -> None:
    # Some mcp releases' stdio_client terminate the server at once instead of closing stdin:
    # flush what the last requests recorded, then leave.
    ats.shutdown()
    os._exit(0)


signal.signal(signal.SIGTERM, _stop)

V2 = int(version("mcp").split(".")[0]) >= 2
transport = sys.argv[1]
port = int(sys.argv[2]) if transport == "http" else 8000
# Imported after ats.init: patched on import.
if V2:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("ats-test", log_level="WARNING")
else:
    from mcp.server.fastmcp import FastMCP
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]

    server = FastMCP("ats-test", host="127.0.0.1", port=port, log_level="WARNING")  # type: ignore[assignment]


@server.tool()
def lookup(account: str, pin: int) -> str:
    """Returns a balance for an account (the arguments are what must never be stored)."""
    return f"balance of {account}: {pin * 3} credits"


@server.tool()
def explode(reason: str) -> str:
    """Always fails: the server turns the error into an isError result."""
    raise ToolError(f"cannot do {reason}")


@server.resource("notes://{topic}")
def note(topic: str) -> str:
    return f"note about {topic}"


@server.prompt()
def greet(person: str) -> str:
    return f"Say hello to {person}"


if __name__ == "__main__":
    try:
        if transport == "stdio":
            server.run("stdio")
        elif V2:
            server.run("streamable-http", host="127.0.0.1", port=port)
        else:
            server.run("streamable-http")
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT the test stops it with; exit normally
        pass
