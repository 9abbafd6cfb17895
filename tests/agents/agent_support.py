"""Shared helpers of the agent framework tests (the store reader, metric readers, marker texts)."""

from __future__ import annotations

import json

from pathlib import Path
from typing import Any

import ats

import store_reader

#: Text that must never reach the store unless genai.capture_content is on.
PROMPT_SECRET = "PROMPT-TEXT-quartz-7781"
COMPLETION_SECRET = "COMPLETION-TEXT-basalt-4410"
TOOL_ARG_SECRET = "Reykjavik-ARG-0093"
TOOL_RESULT_SECRET = "RESULT-TEXT-granite-2207"
EMAIL = "ada@example.org"


class Store:
    """Reads what ATS wrote under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _db(self) -> store_reader.StoreReader:
        assert ats.flush(5.0)
        return store_reader.connect(self.home / "ats.db")

    def spans(self) -> list[dict[str, Any]]:
        rows = self._db().execute(
            "SELECT name, span_id, parent_id, status, attributes, component, trace_id FROM spans_v ORDER BY start_ns"
        ).fetchall()
        return [{"name": n, "span_id": s, "parent_id": p, "status": st, "attributes": json.loads(a),
                 "component": c, "trace_id": t} for n, s, p, st, a, c, t in rows]

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        rows = self._db().execute("SELECT event, component, severity, span_id, attributes FROM logs_v ORDER BY ts_ns").fetchall()
        out = [{"event": e, "component": c, "severity": sev, "span_id": sid, "attributes": json.loads(a)}
               for e, c, sev, sid, a in rows]
        return [r for r in out if event is None or r["event"] == event]

    def stored_bytes(self) -> bytes:
        assert ats.shutdown(5.0)
        return b"".join(p.read_bytes() for p in sorted(self.home.rglob("*")) if p.is_file())


def metric(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The one snapshot point of ``name`` with exactly ``labels``."""
    found = [p for p in ats.metrics.snapshot() if p["name"] == name and p["labels"] == (labels or {})]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def count(name: str, labels: dict[str, str] | None = None) -> float:
    """A counter's value (histogram: its count), 0 before its first use. Metrics are
    process-wide and cumulative: tests compare counts before and after."""
    found = [p for p in ats.metrics.snapshot() if p["name"] == name and p["labels"] == (labels or {})]
    if not found:
        return 0.0
    point = found[0]
    return float(point["count"] if point["kind"] == "histogram" else point["value"])
