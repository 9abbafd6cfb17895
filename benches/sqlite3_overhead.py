"""Per-query overhead of sqlite3 instrumentation: ATS vs OpenTelemetry vs ddtrace.

Each variant runs in its own fresh interpreter (no cross-patching), times a cursor point query
with timeit (best of R repeats of N queries: the minimum is what the code costs, the rest is
noise from a shared machine), and reports overhead = variant - raw in the same run. Variants
alternate over ROUNDS fresh processes and each keeps its minimum: between two processes the same
code differs by up to ~10 % (memory layout), more than ATS's whole overhead.

Run: .venv/bin/python benches/sqlite3_overhead.py [rounds]   (peers from benches/requirements.txt)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

N, R = 20_000, 15

CHILD = r"""
import json, os, sqlite3, sys, tempfile, timeit
variant, n, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = os.path.join(tempfile.mkdtemp(), "bench.db")
db = sqlite3.connect(path)
db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
db.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"user{i}") for i in range(1000)])
db.commit(); db.close()
check = None
if variant == "ats":
    import ats
    # 300,000 queries back to back outrun the flusher for a while; the ring is sized to hold them.
    ats.init(**{"home": tempfile.mkdtemp(), "ring.bytes": "64MiB"})
    # Every query recorded: a ring that filled up would make ATS look cheaper than it is.
    check = lambda: (ats.flush(30.0), ats._runtime.current().pipeline.stats())[1]["dropped"]["ring_full"] == 0
elif variant == "opentelemetry":
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    seen = [0]
    class Discard(SpanExporter):
        def export(self, spans):
            seen[0] += len(spans); return SpanExportResult.SUCCESS
    provider = TracerProvider(); provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    SQLite3Instrumentor().instrument(tracer_provider=provider)
    check = lambda: (provider.force_flush(), seen[0] > 0)[1]
elif variant == "ddtrace":
    from ddtrace import patch
    patch(sqlite3=True)
    check = lambda: True
conn = sqlite3.connect(path)
cur = conn.cursor()
def q():
    cur.execute("SELECT name FROM users WHERE id = ?", (42,))
    return cur.fetchone()
assert q() == ("user42",)
best = min(timeit.repeat(q, number=n, repeat=r)) / n
assert check is None or check(), "instrumentation recorded nothing"
if variant == "ddtrace":
    assert type(conn).__name__ != "Connection"
print(json.dumps({"variant": variant, "ns": best * 1e9}))
"""


def run(variant: str) -> float:
    env = dict(os.environ, DD_TRACE_AGENT_URL="http://127.0.0.1:9", DD_INSTRUMENTATION_TELEMETRY_ENABLED="false",
               ATS_HOME=tempfile.mkdtemp())
    out = subprocess.run([sys.executable, "-c", CHILD, variant, str(N), str(R)], env=env, check=True,
                         capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["ns"])


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    results: dict[str, float] = {}
    for _ in range(rounds):
        for v in ("raw", "ats", "opentelemetry", "ddtrace"):
            results[v] = min(results.get(v, float("inf")), run(v))
    raw = results["raw"]
    print(f"{'variant':<14} {'ns/query':>9} {'overhead ns':>12} {'vs ATS':>8}")
    ats_over = max(results["ats"] - raw, 1e-9)
    for v, ns in results.items():
        over = ns - raw
        ratio = "" if v in ("raw", "ats") else f"{over / ats_over:7.1f}x"
        print(f"{v:<14} {ns:9.0f} {over:12.0f} {ratio:>8}")


if __name__ == "__main__":
    main()
