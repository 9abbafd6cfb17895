"""Per-query instruction counts on the application thread (valgrind callgrind, threads
counted separately) for the sqlite3 point query: raw, ATS, OpenTelemetry, ddtrace. Instructions do not depend on what else the machine is doing, so
the overhead ratios are repeatable where wall-clock timings on a shared machine are not.

Each variant runs twice under callgrind, with N and 2N queries; the difference divided by N
is the cost of one query with set-up and tear-down cancelled out.
Run: .venv/bin/python benches/sqlite3_instructions.py   (needs valgrind)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

N = 2000
CHILD = Path(__file__).with_name("sqlite3_overhead.py")


def instructions(variant: str, n: int) -> int:
    out_file = tempfile.mktemp(suffix=".callgrind")
    env = dict(os.environ, DD_TRACE_AGENT_URL="http://127.0.0.1:9", DD_INSTRUMENTATION_TELEMETRY_ENABLED="false",
               ATS_HOME=tempfile.mkdtemp(),
               PYTHONHASHSEED="0")  # string hashes (dict probe lengths) the same in every run
    code = (f"import runpy, sys; m = runpy.run_path({str(CHILD)!r}); "
            f"exec(m['CHILD'].replace('best = min(timeit.repeat(q, number=n, repeat=r)) / n', "
            f"'[q() for _ in range(n)]; best = 0'), {{'__name__': 'child'}})")
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out_file}",
                           sys.executable, "-c", code, variant, str(n), "1"],
                          env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant}: {proc.stderr[-2000:]}")
    # Thread 1 is the application thread; flusher/exporter threads work off it.
    main_thread = Path(f"{out_file}-01")
    text = main_thread.read_text()
    for f in Path(out_file).parent.glob(Path(out_file).name + "-*"):
        f.unlink()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError(f"{variant}: no summary in {main_thread}")
    return int(m.group(1))


def main() -> None:
    per_query = {}
    for variant in ("raw", "ats", "opentelemetry", "ddtrace"):
        per_query[variant] = (instructions(variant, 2 * N) - instructions(variant, N)) / N
    raw = per_query["raw"]
    ats_over = per_query["ats"] - raw
    print(f"{'variant':<14} {'instr/query':>12} {'overhead':>10} {'vs ATS':>8}")
    for v, n in per_query.items():
        over = n - raw
        ratio = f"{over / ats_over:7.1f}x" if v not in ("raw", "ats") and ats_over > 0 else ""
        print(f"{v:<14} {n:12.0f} {over:10.0f} {ratio:>8}")


if __name__ == "__main__":
    main()
