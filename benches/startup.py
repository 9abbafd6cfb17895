"""Start-up cost: `python -c pass`, `python -c "import ats"` and `ats-run python -c pass`.

Median wall time of N fresh processes each; run from the repository root after ci/install.sh.
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


def main() -> None:
    env = dict(os.environ, ATS_HOME=tempfile.mkdtemp())
    py = sys.executable
    base = median_ms([py, "-c", "pass"], env)
    imp = median_ms([py, "-c", "import ats"], env)
    run = median_ms([str(BIN / "ats-run"), py, "-c", "pass"], env)
    print(f"python -c pass            {base:7.1f} ms")
    print(f"python -c 'import ats'    {imp:7.1f} ms  (+{imp - base:.1f} ms)")
    print(f"ats-run python -c pass    {run:7.1f} ms  (+{run - base:.1f} ms)")


if __name__ == "__main__":
    main()
