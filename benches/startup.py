"""Start-up cost: `python -c pass`, `python -c "import ats"` and `ats-run python -c pass`.

Median wall time of N fresh processes each, and the median cumulative time of ``import ats``
as ``python -X importtime`` counts it, with the modules that cost most by their own import.
Run from the repository root after ci/install.sh.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = 20
BIN = Path(sys.executable).parent


def median_ms(cmd: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(N):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def importtime(env: dict[str, str]) -> tuple[int, list[tuple[int, str]]]:
    """(cumulative us of ``import ats``, [(self us, module)] of the modules it imported first)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ats"], env=env,
                         capture_output=True, text=True, check=True).stderr
    # Lines come in completion order, a module's imports just before it, indented one more.
    children: list[tuple[int, str]] = []
    for line in err.splitlines():
        fields = line.partition("import time:")[2].split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue
        name = fields[2].rstrip()
        if name == " ats":
            return int(fields[1]), children
        if name == " " + name.lstrip():  # another top-level import: its children were not ats's
            children = []
        else:
            children.append((int(fields[0]), name.strip()))
    raise RuntimeError(f"no `ats` line in -X importtime output:\n{err}")


#: The peers' bootstrap wrappers, when installed (benches/requirements.txt): nothing exported.
PEER_ENV = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
            "DD_TRACE_AGENT_URL": "http://127.0.0.1:9", "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false"}
PEERS = {"opentelemetry-instrument python -c pass": "opentelemetry-instrument",
         "ddtrace-run python -c pass": "ddtrace-run"}


def main() -> None:
    env = dict(os.environ, ATS_HOME=tempfile.mkdtemp(), **PEER_ENV)
    py = sys.executable
    base = median_ms([py, "-c", "pass"], env)
    rows = {
        "python -c 'import ats'": median_ms([py, "-c", "import ats"], env),
        "ats-run python -c pass": median_ms([str(BIN / "ats-run"), py, "-c", "pass"], env),
    }
    for label, wrapper in PEERS.items():
        if (BIN / wrapper).exists():
            rows[label] = median_ms([str(BIN / wrapper), py, "-c", "pass"], env)
    print(f"{'python -c pass':42} {base:7.1f} ms")
    for label, ms in rows.items():
        print(f"{label:42} {ms:7.1f} ms  (+{ms - base:.1f} ms)")
    runs = [importtime(env) for _ in range(N)]
    total = statistics.median(t for t, _ in runs)
    print(f"-X importtime: import ats {total / 1000:7.1f} ms cumulative (median of {N}); most by own import:")
    for self_us, module in sorted(runs[-1][1], reverse=True)[:8]:
        print(f"    {self_us / 1000:6.2f} ms  {module}")


if __name__ == "__main__":
    main()
