"""Per-query overhead of psycopg 3 instrumentation on a real PostgreSQL: ATS vs OpenTelemetry.

The server is the one of ``ci/services.sh start`` (parameters from ``.ci-services/env`` or
``ATS_PG_*``).  Each variant runs in its own fresh interpreter (no cross-patching) and times a
cursor point query over loopback.  Two figures per variant, both "best of R repeats of N
queries" (the minimum is what the code costs; the rest is noise from a shared machine):

* wall time per query (includes the server and the network round trip);
* application-thread CPU time per query (``time.thread_time``: the server's work, the wait on
  the socket and background threads are excluded, so the instrumentation's cost on the
  program's own thread stands out);
* whole-process CPU per query (``time.process_time``: adds the exporters' background threads,
  ATS's native flusher or OpenTelemetry's BatchSpanProcessor).

Overhead = variant - raw, same run.  Variants are interleaved over ROUNDS rounds so a slow
moment of the machine does not favour one of them.

Run: .venv/bin/python benches/pg_overhead.py   (peers from benches/requirements.txt)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

N, R, ROUNDS = 2_000, 7, 3
VARIANTS = ("raw", "ats", "opentelemetry")
ENV_FILE = Path(__file__).resolve().parent.parent / ".ci-services" / "env"

CHILD = r"""
import json, sys, tempfile, time
variant, dsn, n, r = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
check = None
if variant == "ats":
    import ats
    ats.init(**{"home": tempfile.mkdtemp(), "ring.bytes": "64MiB"})
    check = lambda: ats._runtime.current().pipeline.stats()["pushed"] > 0
elif variant == "opentelemetry":
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    seen = [0]
    class Discard(SpanExporter):
        def export(self, spans):
            seen[0] += len(spans); return SpanExportResult.SUCCESS
    provider = TracerProvider(); provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    PsycopgInstrumentor().instrument(tracer_provider=provider)
    check = lambda: (provider.force_flush(), seen[0] > 0)[1]
import psycopg
conn = psycopg.connect(dsn, autocommit=True)
cur = conn.cursor()
def q():
    cur.execute("SELECT name FROM ats_bench_users WHERE id = %s", (42,))
    return cur.fetchone()
assert q() == ("user42",)
for _ in range(200):
    q()
wall, cpu, proc = [], [], []
for _ in range(r):
    w0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
    for _ in range(n):
        q()
    wall.append((time.perf_counter() - w0) / n); cpu.append((time.thread_time() - c0) / n)
    proc.append((time.process_time() - p0) / n)
assert check is None or check(), "instrumentation recorded nothing"
if variant == "ats":
    import ats
    assert ats._runtime.current().pipeline.stats()["pushed"] >= n * r
print(json.dumps({"variant": variant, "wall_ns": min(wall) * 1e9, "cpu_ns": min(cpu) * 1e9,
                  "proc_ns": min(proc) * 1e9}))
"""


def dsn() -> str:
    values = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value
    values.update({k: v for k, v in os.environ.items() if k.startswith("ATS_PG_")})
    try:
        return (
            f"host={values['ATS_PG_HOST']} port={values['ATS_PG_PORT']} user={values['ATS_PG_USER']}"
            f" password={values['ATS_PG_PASSWORD']} dbname={values['ATS_PG_DATABASE']}"
        )
    except KeyError:
        sys.exit("PostgreSQL parameters missing: run `bash ci/services.sh start` first")


def prepare(conninfo: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ats_bench_users")
        conn.execute("CREATE TABLE ats_bench_users (id int PRIMARY KEY, name text)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ats_bench_users VALUES (%s, %s)", [(i, f"user{i}") for i in range(1000)]
            )


def run(variant: str, conninfo: str) -> dict[str, float]:
    env = dict(os.environ, ATS_HOME=tempfile.mkdtemp())
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant, conninfo, str(N), str(R)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    conninfo = dsn()
    prepare(conninfo)
    best: dict[str, dict[str, float]] = {}
    for _ in range(ROUNDS):
        for variant in VARIANTS:
            result = run(variant, conninfo)
            prev = best.setdefault(variant, {k: float("inf") for k in result if k != "variant"})
            for key in prev:
                prev[key] = min(prev[key], result[key])
    raw = best["raw"]
    print(f"psycopg {N}x{R} point queries, best of {ROUNDS} interleaved rounds")
    print("us per query; 'over' = variant - raw; app = the program's thread, proc = all threads")
    print(
        f"{'variant':<14} {'wall':>7} {'over':>7} {'app cpu':>8} {'over':>7} {'vs ATS':>7}"
        f" {'proc cpu':>9} {'over':>7}"
    )
    ats_cpu = max(best["ats"]["cpu_ns"] - raw["cpu_ns"], 1e-9)
    for variant, r in best.items():
        over = {k: (r[k] - raw[k]) / 1e3 for k in r}
        ratio = "" if variant in ("raw", "ats") else f"{(r['cpu_ns'] - raw['cpu_ns']) / ats_cpu:6.1f}x"
        print(
            f"{variant:<14} {r['wall_ns'] / 1e3:7.1f} {over['wall_ns']:7.2f} {r['cpu_ns'] / 1e3:8.2f}"
            f" {over['cpu_ns']:7.2f} {ratio:>7} {r['proc_ns'] / 1e3:9.2f} {over['proc_ns']:7.2f}"
        )


if __name__ == "__main__":
    main()
