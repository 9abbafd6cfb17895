"""End to end: ``ats-run python app.py`` on an unchanged LangGraph program (the installed ATS and
ats-langchain, loaded through the entry point in a fresh process)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parent / "apps" / "langgraph_app.py"
BIN = Path(sys.executable).parent
CONTENT = [b"PROMPT-opal-1207", b"COMPLETION-jade-8812", b"ARG-onyx-3310", b"RESULT-lapis-5521"]


def test_ats_run_traces_an_unchanged_langgraph_program(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed ats, not python/
    env.update(ATS_HOME=str(tmp_path / ".ats"), ATS_JSONL_ENABLED="true")
    result = subprocess.run([str(BIN / "ats-run"), sys.executable, str(APP)], env=env, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["answer COMPLETION-jade-8812"]
    assert "ats:" not in result.stderr

    db = sqlite3.connect(f"file:{tmp_path / '.ats' / 'ats.db'}?mode=ro", uri=True)
    spans = db.execute("SELECT name, component, attributes FROM spans_v ORDER BY start_ns").fetchall()
    assert [(n, c) for n, c, _ in spans] == [
        ("invoke_agent lookup_agent", "ats-langchain"), ("step agent", "ats-langchain"),
        ("chat", "ats-langchain"), ("step tools", "ats-langchain"),
        ("execute_tool lookup", "ats-langchain"), ("step agent", "ats-langchain"), ("chat", "ats-langchain"),
    ]
    assert json.loads(spans[4][2])["gen_ai.tool.call.id"] == "call_r1"
    events = [e for (e,) in db.execute("SELECT event FROM logs_v ORDER BY ts_ns")]
    assert events.count("agent.lifecycle") == 2 and events.count("task.execution") == 4
    for path in (tmp_path / ".ats").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for text in CONTENT:
                assert text not in data, (text, path)
