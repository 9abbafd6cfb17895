"""multiprocessing children under ats-run: spawn (instrumented through the inherited
PYTHONPATH bootstrap) and fork (flushed on multiprocessing's os._exit path), as single
processes, pools and ProcessPoolExecutor workers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent / "e2e"
BIN = Path(sys.executable).parent


def test_spawned_and_forked_children_record_their_own_spans(tmp_path: Path) -> None:
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"))
    result = subprocess.run([str(BIN / "ats-run"), sys.executable, str(HERE / "mp_app.py")], env=env,
                            capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ats:" not in result.stderr
    pids: dict[str, list[int]] = json.loads(result.stdout)
    assert {k: len(v) for k, v in pids.items()} == {
        "parent": 1, "spawn-process": 1, "spawn-pool": 4, "spawn-executor": 3,
        "fork-process": 1, "fork-pool": 4, "fork-executor": 3,
    }
    parent = pids["parent"][0]
    assert all(pid != parent for label, group in pids.items() if label != "parent" for pid in group)

    db = sqlite3.connect(f"file:{tmp_path / '.ats' / 'ats.db'}?mode=ro", uri=True)
    rows = db.execute("SELECT name, trace_id, json_extract(attributes, '$.\"db.statement\"') FROM spans_v").fetchall()
    db.close()
    # Every call of every process: exactly one CREATE and one SELECT on its own table.
    statements = Counter(stmt for name, _, stmt in rows if name == "driver.query")
    expected: Counter[str] = Counter()
    for label, group in pids.items():
        calls = ["parent"] if label == "parent" else [
            label.replace("-process", "proc").replace("-pool", "pool").replace("-executor", "exec") + (
                "" if label.endswith("-process") else str(i)) for i in range(len(group))]
        for call, pid in zip(calls, group):
            expected[f"CREATE TABLE p{pid}_{call} (x INTEGER)"] += 1
            expected[f"SELECT x FROM p{pid}_{call} WHERE x = ?"] += 1
    assert statements == expected
    assert Counter(name for name, _, _ in rows) == {"driver.handshake": 17, "driver.query": 34, "driver.close": 17}
    # Each process draws its own trace ids (a forked child does not replay its parent's).
    assert len({trace for _, trace, _ in rows}) == len(rows) == 68
