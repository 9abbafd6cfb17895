"""An MCP client run with ATS (``ats.init()``): ``client.py stdio SERVER_HOME`` or ``client.py http URL``.

Calls initialize, tools/list, tools/call (a good and an isError call), resources/read, prompts/get
and an unknown tool (a JSON-RPC error on 1.x servers? no: FastMCP answers isError), then prints the
results' text as JSON for the test to compare.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import ats

ats.init()

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402
from mcp.shared.exceptions import McpError  # noqa: E402

ACCOUNT = os.environ["APP_ACCOUNT"]
PIN = int(os.environ["APP_PIN"])
REASON = os.environ["APP_REASON"]


async def exercise(session: ClientSession) -> dict[str, object]:
    out: dict[str, object] = {}
    init = await session.initialize()
    out["protocol"] = init.protocolVersion
    tools = await session.list_tools()
    out["tools"] = sorted(t.name for t in tools.tools)
    ok = await session.call_tool("lookup", {"account": ACCOUNT, "pin": PIN})
    out["lookup"] = [ok.isError, ok.content[0].text]  # type: ignore[union-attr]
    bad = await session.call_tool("explode", {"reason": REASON})
    out["explode"] = [bad.isError, bad.content[0].text]  # type: ignore[union-attr]
    res = await session.read_resource("notes://weather")  # type: ignore[arg-type]
    out["resource"] = res.contents[0].text  # type: ignore[union-attr]
    prompt = await session.get_prompt("greet", {"person": ACCOUNT})
    out["prompt"] = prompt.messages[0].content.text  # type: ignore[union-attr]
    try:
        await session.read_resource("nowhere://x")  # type: ignore[arg-type]
        out["missing"] = None
    except McpError as exc:
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
        async with streamablehttp_client(sys.argv[2]) as (read, write, _), ClientSession(read, write) as session:
            out = await exercise(session)
    print(json.dumps(out))


asyncio.run(main())
