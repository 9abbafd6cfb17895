"""An MCP client run with ATS (``ats.init()``): ``client.py stdio SERVER_HOME`` or ``client.py http URL``.

Calls initialize, tools/list, tools/call (a good and an isError call), resources/read, prompts/get
and a resource that does not exist (a JSON-RPC error), then prints the results' text as JSON for the
test to compare. The few names ``mcp`` 2 changed (``is_error``, ``MCPError``, ``streamable_http_client``
yielding two streams) are picked by version.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from importlib.metadata import version
from typing import Any

import ats

ats.init()
if os.environ.get("APP_OTEL"):
    import user_otel  # noqa: E402  (the program's own OpenTelemetry SDK, set before mcp is used)

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

V2 = int(version("mcp").split(".")[0]) >= 2
if V2:
    from mcp import MCPError as RequestFailed
    from mcp.client.streamable_http import streamable_http_client as http_client
else:
    from mcp.client.streamable_http import streamablehttp_client as http_client  # type: ignore[no-redef]
    from mcp.shared.exceptions import McpError as RequestFailed  # type: ignore[no-redef]

ACCOUNT = os.environ["APP_ACCOUNT"]
PIN = int(os.environ["APP_PIN"])
REASON = os.environ["APP_REASON"]


def field(model: Any, v1: str, v2: str) -> Any:
    return getattr(model, v2 if V2 else v1)


async def exercise(session: ClientSession) -> dict[str, object]:
    out: dict[str, object] = {}
    init = await session.initialize()
    out["protocol"] = field(init, "protocolVersion", "protocol_version")
    tools = await session.list_tools()
    out["tools"] = sorted(t.name for t in tools.tools)
    ok = await session.call_tool("lookup", {"account": ACCOUNT, "pin": PIN})
    out["lookup"] = [field(ok, "isError", "is_error"), ok.content[0].text]  # type: ignore[union-attr]
    bad = await session.call_tool("explode", {"reason": REASON})
    out["explode"] = [field(bad, "isError", "is_error"), bad.content[0].text]  # type: ignore[union-attr]
    res = await session.read_resource("notes://weather")  # type: ignore[arg-type]
    out["resource"] = res.contents[0].text  # type: ignore[union-attr]
    prompt = await session.get_prompt("greet", {"person": ACCOUNT})
    out["prompt"] = prompt.messages[0].content.text  # type: ignore[union-attr]
    try:
        await session.read_resource("nowhere://x")  # type: ignore[arg-type]
        out["missing"] = None
    except RequestFailed as exc:
        out["missing"] = exc.error.code
    return out


async def main() -> None:
    mode = sys.argv[1]
    if mode == "stdio":
        env = dict(os.environ, ATS_HOME=sys.argv[2])
        params = StdioServerParameters(command=sys.executable, args=[os.environ["APP_SERVER"], "stdio"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            out = await exercise(session)
    else:
        async with http_client(sys.argv[2]) as streams, ClientSession(streams[0], streams[1]) as session:
            out = await exercise(session)
    if os.environ.get("APP_OTEL"):
        out["otel"] = user_otel.exported()
    print(json.dumps(out))


asyncio.run(main())
