"""Overhead of a traced MCP ``tools/call`` round trip over stdio: none vs ATS vs the peer.

Each variant runs a fresh client interpreter that starts an MCP server (FastMCP on ``mcp`` 1,
MCPServer on ``mcp`` 2) over stdio, both instrumented the same way (``none``: neither; ``ats``:
``ats.init()`` with ats-mcp in both processes). The peer on ``mcp`` 1 is ``openllmetry``
(``opentelemetry-instrumentation-mcp`` with an SDK TracerProvider and a discarding batch exporter in
both); ``mcp`` 2 traces itself, so there the peer is ``otel-sdk``: its own spans through an SDK
TracerProvider with the same discarding exporter (and ``none`` still pays for mcp 2's spans on
OpenTelemetry's no-op tracer). The client times ``call_tool("add", {...})`` (best of R repeats of N calls,
per call: the minimum is what the code costs, the rest is noise from a shared machine) and reports
overhead = variant - none from the same run.

Run: PYTHONPATH=python .venv/bin/python benches/mcp_overhead.py   (peer from benches/requirements.txt)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

N, R = 300, 9

SETUP = r"""
import os, sys, tempfile
variant = os.environ["BENCH_VARIANT"]
check = lambda: True
if variant == "ats":
    import ats
    ats.init(home=tempfile.mkdtemp())
    check = lambda: ats._runtime.current().pipeline.stats()["pushed"] > 0
elif variant in ("openllmetry", "otel-sdk"):
    if variant == "openllmetry":
        from opentelemetry.instrumentation.mcp import McpInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    seen = [0]
    class Discard(SpanExporter):
        def export(self, spans):
            seen[0] += len(spans); return SpanExportResult.SUCCESS
    provider = TracerProvider(); provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    from opentelemetry import trace
    trace.set_tracer_provider(provider)
    if variant == "openllmetry":
        McpInstrumentor().instrument(tracer_provider=provider)
    check = lambda: (provider.force_flush(), seen[0] > 0)[1]
"""

SERVER = SETUP + r"""
from importlib.metadata import version
if int(version("mcp").split(".")[0]) >= 2:
    from mcp.server.mcpserver import MCPServer as Server
else:
    from mcp.server.fastmcp import FastMCP as Server
server = Server("bench", log_level="WARNING")

@server.tool()
def add(a: int, b: int) -> int:
    return a + b

server.run("stdio")
"""

CLIENT = SETUP + r"""
import asyncio, json, time
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
n, r, server_code = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

async def main():
    params = StdioServerParameters(command=sys.executable, args=["-c", server_code], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool("add", {"a": 2, "b": 3})
        assert result.content[0].text == "5", result
        best = float("inf")
        for _ in range(r):
            start = time.perf_counter_ns()
            for i in range(n):
                await session.call_tool("add", {"a": i, "b": 3})
            best = min(best, (time.perf_counter_ns() - start) / n)
    assert check(), "instrumentation recorded nothing"
    print(json.dumps({"variant": os.environ["BENCH_VARIANT"], "ns": best}))

asyncio.run(main())
"""


def run(variant: str) -> float:
    env = dict(os.environ, BENCH_VARIANT=variant)
    for var in list(env):
        if var.startswith(("ATS_", "OTEL_")):
            del env[var]
    out = subprocess.run([sys.executable, "-c", CLIENT, str(N), str(R), SERVER], env=env, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{out.stderr}")
    ns: float = json.loads(out.stdout.strip().splitlines()[-1])["ns"]
    return ns


def main() -> None:
    from importlib.metadata import version

    peer = "otel-sdk" if int(version("mcp").split(".")[0]) >= 2 else "openllmetry"
    results = {v: run(v) for v in ("none", "ats", peer)}
    base = results["none"]
    print(f"MCP {version('mcp')} tools/call round trip over stdio, best of {R} x {N} calls "
          "(client + server in two processes)")
    for variant, ns in results.items():
        extra = "" if variant == "none" else f"  overhead {(ns - base) / 1000:+8.1f} us ({(ns / base - 1) * 100:+.1f} %)"
        print(f"  {variant:12s} {ns / 1000:8.1f} us/call{extra}")


if __name__ == "__main__":
    main()
