"""A FastMCP server run with ATS (``ats.init()``): ``server.py stdio`` or ``server.py http PORT``."""

from __future__ import annotations

import os
import signal
import sys

import ats

ats.init()


def _stop(*_: object) -> None:
    # Some mcp 1.x releases' stdio_client terminate the server at once instead of closing stdin:
    # flush what the last requests recorded, then leave.
    ats.shutdown()
    os._exit(0)


signal.signal(signal.SIGTERM, _stop)

from mcp.server.fastmcp import FastMCP  # noqa: E402  (after ats.init: patched on import)
from mcp.server.fastmcp.exceptions import ToolError  # noqa: E402

transport = sys.argv[1]
port = int(sys.argv[2]) if transport == "http" else 8000
server = FastMCP("ats-test", host="127.0.0.1", port=port, log_level="WARNING")


@server.tool()
def lookup(account: str, pin: int) -> str:
    """Returns a balance for an account (the arguments are what must never be stored)."""
    return f"balance of {account}: {pin * 3} credits"


@server.tool()
def explode(reason: str) -> str:
    """Always fails: FastMCP turns the error into an isError result."""
    raise ToolError(f"cannot do {reason}")


@server.resource("notes://{topic}")
def note(topic: str) -> str:
    return f"note about {topic}"


@server.prompt()
def greet(person: str) -> str:
    return f"Say hello to {person}"


if __name__ == "__main__":
    try:
        server.run(transport="stdio" if transport == "stdio" else "streamable-http")
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT the test stops it with; exit normally
        pass
