"""Start-up cost with pytest-benchmark, in one run: `python -c pass`, `python -c "import ats"`,
`ats-run python -c pass` beside the peers' `opentelemetry-instrument` and `ddtrace-run`, and
the import of ats as `python -X importtime` counts it.

Run: bash ci/bench.sh (or `pytest benches/test_bench_startup.py --benchmark-only`). The
difference of the medians is the cost; `benches/startup.py` prints the same as a table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from startup import PEER_ENV, PEERS, importtime

BIN = Path(sys.executable).parent
ENV = dict(os.environ, ATS_HOME=tempfile.mkdtemp(), **PEER_ENV)
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "python -c 'import ats'": [sys.executable, "-c", "import ats"],
    "ats-run python -c pass": [str(BIN / "ats-run"), sys.executable, "-c", "pass"],
    **{label: [str(BIN / wrapper), sys.executable, "-c", "pass"] for label, wrapper in PEERS.items()
       if (BIN / wrapper).exists()},
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_start_up(benchmark: Any, name: str) -> None:
    cmd = COMMANDS[name]
    benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"check": True, "env": ENV},
                       rounds=20, warmup_rounds=2)


def test_import_ats_importtime(benchmark: Any) -> None:
    """Timed: the whole `python -X importtime -c "import ats"` process. What counts is
    ``extra_info["import_ats_us"]``: the median of what -X importtime itself reports for ats."""
    reported: list[int] = []
    benchmark.pedantic(lambda: reported.append(importtime(ENV)[0]), rounds=20, warmup_rounds=2)
    benchmark.extra_info["import_ats_us"] = sorted(reported)[len(reported) // 2]
