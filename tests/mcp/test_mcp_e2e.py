"""ats-mcp end to end: an MCP server and a ClientSession in two processes, both running ATS.

On ``mcp`` 1 the server is FastMCP and ATS makes the spans; on ``mcp`` 2 it is MCPServer and ATS
records the SDK's own OpenTelemetry spans, enriched (``apps/server.py`` picks by version). The
assertions are the same but for what ``mcp`` 2 does differently: its server also traces
``initialize`` and the ``notifications/initialized`` notification, its request ids start at 1, and
its server spans carry ``mcp.protocol.version``.

Each process has its own store (ATS_HOME); the client drives initialize, tools/list, two tools/call
(one ``isError``), resources/read (one JSON-RPC error) and prompts/get, over stdio and over
streamable HTTP (uvicorn on a free loopback port). The two stores must form one trace per request
(server span parented by the client span), with the conventions' names and attributes, seed 003
``bridge.message`` records, the duration histograms, and no argument or result text anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

APPS = Path(__file__).parent / "apps"
#: The installed mcp's major version picks the apps and the expectations that differ.
V2 = int(version("mcp").split(".")[0]) >= 2
SERVER_APP = APPS / "server.py"
CLIENT_APP = APPS / "client.py"
NOTIFIED = "notifications/initialized"
ACCOUNT = "acct-ZEBRA-4411-quokka"
PIN = 918273645
REASON = "launch-codes-QX77"
EMAIL = "carol.secret@example.org"
CLIENT_NAMES = ["initialize", "tools/list", "tools/call lookup", "tools/call explode", "resources/read",
                "prompts/get greet", "resources/read"]
BRIDGE_FIELDS = {"bridge_type", "direction", "message_id", "source", "destination", "message_type",
                 "payload_size_bytes", "processing_time_ms", "mcp.method.name"}


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical(value)).hexdigest()


def base_env(tmp_path: Path, account: str = ACCOUNT, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    env.update(APP_ACCOUNT=account, APP_PIN=str(PIN), APP_REASON=REASON, APP_SERVER=str(SERVER_APP),
               ATS_FLUSH_INTERVAL_MS="20", ATS_METRICS_INTERVAL_MS="100", **extra)
    return env


def store(home: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{home / 'ats.db'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def spans(home: Path) -> list[dict[str, Any]]:
    rows = store(home, "SELECT trace_id, span_id, parent_id, name, component, status, attributes FROM spans_v "
                       "ORDER BY start_ns")
    return [{"trace_id": t, "span_id": s, "parent_id": p, "name": n, "component": c, "status": st,
             "attributes": json.loads(a)} for t, s, p, n, c, st, a in rows]


def bridge(home: Path) -> list[tuple[str, str, dict[str, Any]]]:
    rows = store(home, "SELECT trace_id, span_id, attributes FROM logs_v WHERE event = 'bridge.message' "
                       "ORDER BY ts_ns")
    return [(t, s, json.loads(a)) for t, s, a in rows]


#: The MCP semantic conventions' bucket boundaries for both duration histograms.
MCP_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]


def duration_series(home: Path, name: str) -> dict[tuple[tuple[str, str], ...], int]:
    """labels -> count of the latest point of each series."""
    out: dict[tuple[tuple[str, str], ...], tuple[int, int]] = {}
    for ts, labels, histogram, unit in store(
            home, f"SELECT ts_ns, labels, histogram, unit FROM metric_points WHERE name = '{name}'"):
        assert unit == "s"
        assert json.loads(histogram)["bounds"] == MCP_BUCKETS
        key = tuple(sorted(json.loads(labels).items()))
        if key not in out or ts >= out[key][0]:
            out[key] = (ts, json.loads(histogram)["count"])
    return {k: c for k, (_, c) in out.items()}


def all_bytes(*homes: Path) -> bytes:
    return b"".join(p.read_bytes() for home in homes for p in sorted(home.rglob("*")) if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_client(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(CLIENT_APP), *args], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@contextlib.contextmanager
def http_server(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """A server process on a free loopback port; stopped (and its store flushed) on exit."""
    home = tmp_path / "server"
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER_APP), "http", str(port)],
                            env=dict(env, ATS_HOME=str(home)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", home
    finally:
        proc.send_signal(signal.SIGINT)  # a clean uvicorn shutdown, then ATS flushes at exit
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err


def exercise(tmp_path: Path, transport: str, **extra: str) -> tuple[dict[str, Any], Path, Path]:
    """Runs the client (and, for HTTP, the server) to completion; both stores are final after it."""
    client_home = tmp_path / "client"
    env = base_env(tmp_path, **extra)
    client_env = dict(env, ATS_HOME=str(client_home))
    if transport == "stdio":
        server_home = tmp_path / "server"
        return run_client(client_env, "stdio", str(server_home)), client_home, server_home
    with http_server(tmp_path, env) as (url, server_home):
        out = run_client(client_env, "http", url)
    return out, client_home, server_home


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_one_trace_across_client_and_server(tmp_path: Path, transport: str) -> None:
    out, client_home, server_home = exercise(tmp_path, transport)
    assert out == {
        "protocol": out["protocol"], "tools": ["explode", "lookup"],
        "lookup": [False, f"balance of {ACCOUNT}: {PIN * 3} credits"],
        "explode": [True, f"Error executing tool explode: cannot do {REASON}"],
        "resource": "note about weather", "prompt": f"Say hello to {ACCOUNT}", "missing": out["missing"],
    }
    assert isinstance(out["missing"], int)
    net = "pipe" if transport == "stdio" else "tcp"

    client = spans(client_home)
    everything = spans(server_home)
    assert [s["name"] for s in client] == CLIENT_NAMES
    if V2:
        # mcp 2's server traces every message it handles, initialize and the notification included.
        assert [s["name"] for s in everything] == ["initialize", NOTIFIED, *CLIENT_NAMES[1:]]
        notified = everything.pop(1)
        assert notified["parent_id"] is None and notified["attributes"]["span.kind"] == "server"
        assert "jsonrpc.request.id" not in notified["attributes"]
        paired = client
    else:
        # mcp 1's server answers initialize itself (not through a handler): no server span for it.
        assert [s["name"] for s in everything] == CLIENT_NAMES[1:]
        paired = client[1:]
    server = everything[1:] if V2 else everything  # the request handlers' spans, as on mcp 1
    assert {s["component"] for s in client + everything} == {"ats-mcp"}
    for c, s in zip(paired, everything, strict=True):
        assert s["trace_id"] == c["trace_id"]
        assert s["parent_id"] == c["span_id"]
        assert c["parent_id"] is None
        assert c["attributes"]["span.kind"] == "client" and s["attributes"]["span.kind"] == "server"
        for side in (c, s):
            a = side["attributes"]
            assert a["network.transport"] == net
            assert a["mcp.method.name"] == side["name"].split(" ")[0]
            assert a["jsonrpc.request.id"] == c["attributes"]["jsonrpc.request.id"]
    first_id = 1 if V2 else 0
    assert [c["attributes"]["jsonrpc.request.id"] for c in client] == [str(first_id + i) for i in range(7)]
    assert len({c["trace_id"] for c in client}) == 7
    if transport == "http":
        sid = client[1]["attributes"]["mcp.session.id"]
        assert len(sid) >= 16
        # The server's initialize span starts before the session has an id.
        assert all(s["attributes"]["mcp.session.id"] == sid for s in client + server)
    else:
        assert not any("mcp.session.id" in s["attributes"] for s in client + everything)
    # mcp 2's server spans carry the negotiated protocol version.
    proto = {"mcp.protocol.version": out["protocol"]} if V2 else {}

    lookup_args = {"account": ACCOUNT, "pin": PIN}
    for side, kind in ((client[2], "client"), (server[1], "server")):
        assert side["status"] == "ok"
        assert side["attributes"] == {
            "span.kind": kind, "mcp.method.name": "tools/call", "gen_ai.tool.name": "lookup",
            "gen_ai.operation.name": "execute_tool", "jsonrpc.request.id": str(first_id + 2),
            "network.transport": net, **(proto if kind == "server" else {}),
            "mcp.arguments.hash": sha(lookup_args), "mcp.arguments.size_bytes": len(canonical(lookup_args)),
            "mcp.arguments.names": "account,pin",
            "mcp.result.hash": side["attributes"]["mcp.result.hash"],
            "mcp.result.size_bytes": side["attributes"]["mcp.result.size_bytes"],
            **({"mcp.session.id": side["attributes"]["mcp.session.id"]} if net == "tcp" else {}),
        }
    assert client[2]["attributes"]["mcp.result.hash"] == server[1]["attributes"]["mcp.result.hash"]
    for side in (client[3], server[2]):
        assert side["status"] == "error"
        assert side["attributes"]["error.type"] == "tool_error"
        assert side["attributes"]["mcp.arguments.names"] == "reason"
    for side in (client[6], server[5]):
        assert side["status"] == "error"
        assert side["attributes"]["error.type"] == str(out["missing"])
        assert side["attributes"]["rpc.response.status_code"] == str(out["missing"])
        assert side["attributes"]["mcp.resource.uri"] == "nowhere://x"
    assert client[5]["attributes"]["gen_ai.prompt.name"] == "greet"
    assert client[0]["attributes"]["mcp.protocol.version"] == out["protocol"]

    # Seed 003 bridge.message: two per request on each side, correlated with the span.
    for home, side_spans, outbound_first in ((client_home, client, True), (server_home, everything, False)):
        messages = bridge(home)
        assert len(messages) == 2 * len(side_spans) + (1 if home == server_home and V2 else 0)
        by_span: dict[str, list[dict[str, Any]]] = {}
        for trace_id, span_id, fields in messages:
            assert set(fields) == BRIDGE_FIELDS
            assert fields["bridge_type"] == "MCP"
            assert fields["processing_time_ms"] >= 0
            by_span.setdefault(span_id, []).append(fields)
        for sp in side_spans:
            request_msg, response_msg = sorted(by_span[sp["span_id"]], key=lambda f: f["message_type"] != "request")
            assert request_msg["direction"] == ("OUTBOUND" if outbound_first else "INBOUND")
            assert response_msg["direction"] == ("INBOUND" if outbound_first else "OUTBOUND")
            assert (request_msg["source"], request_msg["destination"]) == ("client", "server")
            assert (response_msg["source"], response_msg["destination"]) == ("server", "client")
            assert request_msg["message_id"] == response_msg["message_id"] == sp["attributes"]["jsonrpc.request.id"]
            assert request_msg["mcp.method.name"] == sp["attributes"]["mcp.method.name"]
            expected_type = "error" if "rpc.response.status_code" in sp["attributes"] else "response"
            assert response_msg["message_type"] == expected_type
            if sp["name"] == "tools/call lookup":
                assert request_msg["payload_size_bytes"] == len(canonical(lookup_args))
                assert response_msg["payload_size_bytes"] == sp["attributes"]["mcp.result.size_bytes"]

    if V2:  # the notification: one inbound message, no answer
        (note,) = [f for _, span_id, f in bridge(server_home) if span_id == notified["span_id"]]
        assert (note["message_type"], note["direction"], note["mcp.method.name"]) == (
            "notification", "INBOUND", NOTIFIED)

    for home, metric in ((client_home, "mcp.client.operation.duration"),
                         (server_home, "mcp.server.operation.duration")):
        labels = {"network.transport": net, **(proto if home == server_home else {})}
        tool = tuple(sorted({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup",
                             "mcp.method.name": "tools/call", **labels}.items()))
        failed = tuple(sorted({"error.type": "tool_error", "gen_ai.operation.name": "execute_tool",
                               "gen_ai.tool.name": "explode", "mcp.method.name": "tools/call", **labels}.items()))
        series = duration_series(home, metric)
        assert series[tool] == 1
        assert series[failed] == 1
        assert all("mcp.session.id" not in dict(k) and "jsonrpc.request.id" not in dict(k) for k in series)

    blob = all_bytes(client_home, server_home)
    for secret in (ACCOUNT, str(PIN), str(PIN * 3), REASON):
        assert secret.encode() not in blob, secret


def test_capture_content_opt_in_stores_scrubbed_text(tmp_path: Path) -> None:
    out, client_home, server_home = exercise(tmp_path, "stdio", account=EMAIL, ATS_MCP_CAPTURE_CONTENT="true")
    assert out["lookup"] == [False, f"balance of {EMAIL}: {PIN * 3} credits"]
    client = spans(client_home)
    server = [s for s in spans(server_home) if s["name"] not in ("initialize", NOTIFIED)]
    for side in (client[2], server[1]):
        a = side["attributes"]
        assert side["name"] == "tools/call lookup"
        assert a["gen_ai.tool.call.arguments"] == canonical({"account": "[EMAIL]", "pin": PIN}).decode()
        assert "[EMAIL]" in a["gen_ai.tool.call.result"] and str(PIN * 3) in a["gen_ai.tool.call.result"]
        assert a["mcp.arguments.hash"] == sha({"account": EMAIL, "pin": PIN})  # of the real arguments
    # Text is opt-in for tools only (the conventions define no prompt-argument attribute).
    assert [k for k in client[5]["attributes"] if k.startswith("gen_ai.tool.call.")] == []
    assert EMAIL.encode() not in all_bytes(client_home, server_home)


def test_beside_the_programs_own_opentelemetry(tmp_path: Path) -> None:
    """The program has its own OpenTelemetry SDK provider (exporter + ATSSpanProcessor). On mcp 2 its
    exporter still gets the SDK's spans, and ATS records each exactly once (ats-mcp claims the scope,
    so ATSSpanProcessor does not record it a second time), with the same span ids. mcp 1 makes no
    spans of its own: the exporter gets none, ATS's are unchanged."""
    out, client_home, _ = exercise(tmp_path, "stdio", APP_OTEL="1")
    client = spans(client_home)
    assert [s["name"] for s in client] == CLIENT_NAMES
    assert {s["component"] for s in client} == {"ats-mcp"}
    if V2:
        assert [name for name, _, _ in out["otel"]] == [f"MCP send {n}" for n in CLIENT_NAMES]
        assert [kind for _, _, kind in out["otel"]] == ["CLIENT"] * 7
        assert [span_id for _, span_id, _ in out["otel"]] == [s["span_id"] for s in client]
    else:
        assert out["otel"] == []
