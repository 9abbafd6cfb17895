"""End-to-end OTLP latency and exporter CPU at a steady span rate (seed 001 §12: < 100 ms).

A child program records `app.tick` spans at RATE spans/s for SECONDS under ATS with OTLP/HTTP
export to a receiver in this process (the collector's stand-in: it decodes every request with
opentelemetry-proto and notes when each span arrived). Latency = arrival - span end. The child
reports the CPU time of ATS's own threads (flusher, OTLP exporter) from /proc, per span.

Run: .venv/bin/python benches/otlp_latency.py [rate] [seconds]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CHILD = r"""
import json, os, sys, time
import ats
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
ats.init()
def thread_cpu():
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            stat = f.read()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out
before = thread_cpu()
t0 = time.perf_counter()
n = 0
while True:
    elapsed = time.perf_counter() - t0
    if elapsed >= seconds:
        break
    while n < elapsed * rate:
        with ats.span("app.tick", seq=n):
            pass
        n += 1
    time.sleep(0.0005)
ats.flush(10)
time.sleep(0.5)
after = thread_cpu()
cpu = {k: after.get(k, 0) - before.get(k, 0) for k in after}
print(json.dumps({"spans": n, "seconds": seconds, "cpu": cpu}))
ats.shutdown(10)
"""

latencies_ms: list[float] = []
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time_ns()
        if self.path == "/v1/traces":
            req = ExportTraceServiceRequest.FromString(body)
            with lock:
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        latencies_ms.extend((now - s.end_time_unix_nano) / 1e6 for s in ss.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(rate: int, seconds: float, interval_ms: int) -> dict[str, float]:
    latencies_ms.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    env.update(ATS_HOME=tempfile.mkdtemp(), OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{server.server_port}",
               OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", ATS_FLUSH_INTERVAL_MS=str(interval_ms))
    out = subprocess.run([sys.executable, "-c", CHILD, str(rate), str(seconds)], env=env, check=True,
                         capture_output=True, text=True)
    server.shutdown()
    child = json.loads(out.stdout.strip().splitlines()[-1])
    got = sorted(latencies_ms)
    cpu = child["cpu"]
    per_span_us = lambda name: 1e6 * sum(v for k, v in cpu.items() if k.startswith(name)) / child["spans"]  # noqa: E731
    return {
        "spans": child["spans"], "received": len(got),
        "p50_ms": statistics.median(got), "p99_ms": got[int(len(got) * 0.99)], "max_ms": got[-1],
        "exporter_cpu_us_per_span": per_span_us("ats-otlp-export"),
        "exporter_cpu_percent": 100 * sum(v for k, v in cpu.items() if k.startswith("ats-otlp-export")) / seconds,
        "flusher_cpu_us_per_span": per_span_us("ats-flusher"),
    }


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    print(f"{'flush interval':>15} {'spans':>7} {'received':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'exporter CPU µs/span':>21} {'exporter CPU %':>15} {'flusher CPU µs/span':>20}")
    for interval in (50, 200):
        r = run(rate, seconds, interval)
        print(f"{interval:>12} ms {r['spans']:>7} {r['received']:>8} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
              f"{r['max_ms']:>7.1f} {r['exporter_cpu_us_per_span']:>21.2f} {r['exporter_cpu_percent']:>15.2f} "
              f"{r['flusher_cpu_us_per_span']:>20.2f}")


if __name__ == "__main__":
    main()
