"""ats-sqlite3 end to end through the real native pipeline (ats._native.driver_call into a real Pipeline).

The runtime object is a stand-in holding a real Pipeline, which is activated for
``driver_call``; everything below it — normalisation, redaction, attributes, metrics, JSONL and SQLite
sinks — is the real thing.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ats
import ats_sqlite3
from ats import _native, context

SECRET = "hunter2-SECRET-9f8e7d"
LITERAL_NAME = "Margaret Hamilton"
LITERAL_EMAIL = "margaret@example.org"


@dataclass
class StandInRuntime:
    pipeline: _native.Pipeline


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_native.Pipeline]:
    pipe = _native.Pipeline(store_path=str(tmp_path / "store.db"), jsonl_dir=str(tmp_path / "jsonl"))
    rt = StandInRuntime(pipe)
    try:
        import ats._runtime as runtime_mod  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        runtime_mod = types.ModuleType("ats._runtime")
        monkeypatch.setitem(sys.modules, "ats._runtime", runtime_mod)
        monkeypatch.setattr(ats, "_runtime", runtime_mod, raising=False)
    monkeypatch.setattr(runtime_mod, "current", lambda: rt, raising=False)
    runtime_mod._activate(pipe)
    ats_sqlite3.instrumentor.instrument()
    try:
        yield pipe
    finally:
        ats_sqlite3.instrumentor.uninstrument()
        _native.deactivate()
        pipe.shutdown(5.0)


def records(tmp_path: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in sorted((tmp_path / "jsonl").glob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return lines


def all_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())


def run_app(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE)")
    conn.execute(
        f"INSERT INTO users (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
        f" /* password={SECRET} */"
    )
    conn.executemany("INSERT INTO users (name, email) VALUES (?, ?)", [("a", "a@x"), ("b", "b@x")])
    cur = conn.cursor()
    cur.execute("SELECT name FROM users WHERE email = ?", (LITERAL_EMAIL,))
    assert cur.fetchone() == (LITERAL_NAME,)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(f"INSERT INTO users (name, email) VALUES ('x', '{LITERAL_EMAIL}')")
    conn.commit()
    conn.close()


def test_spans_attributes_and_redaction(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    parent = context.SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", 0x00F067AA0BA902B7, True)
    token = context.attach(parent)
    try:
        run_app(tmp_path / "app.db")
    finally:
        context.detach(token)
    assert pipeline.flush(5.0)

    spans = [r for r in records(tmp_path) if r["kind"] == "span"]
    assert [r["evt"] for r in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.error",
        "driver.close.ok",
    ]
    for span in spans:
        assert span["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert span["parent_span_id"] == "00f067aa0ba902b7"
        assert span["component"] == "ats-sqlite3"
        assert span["dialect"] == "sqlite"
        assert span["attributes"]["db.system"] == "sqlite"
        assert span["attributes"]["db.system.name"] == "sqlite"
        assert span["attributes"]["db.namespace"] == "app.db"
        assert span["start_ns"] <= span["end_ns"]

    insert = spans[2]["attributes"]
    assert insert["db.statement"] == "INSERT INTO users (name, email) VALUES (?, ?)"
    assert insert["db.query.text"] == insert["db.statement"]
    assert insert["db.operation"] == "INSERT"
    assert insert["db.operation.name"] == "INSERT"
    assert insert["db.collection.name"] == "users"
    assert insert["db.sqlx.air_id"].startswith("air:Q-")

    select = spans[4]["attributes"]
    assert select["db.statement"] == "SELECT name FROM users WHERE email = ?"
    assert select["db.query.summary"] == "SELECT users"

    error = spans[5]
    assert error["status"] == "error"
    assert error["attributes"]["error.type"] == "IntegrityError"

    # No literal value and no secret anywhere: JSONL files and the store's bytes.
    data = all_bytes(tmp_path / "jsonl") + (tmp_path / "store.db").read_bytes()
    for wal in tmp_path.glob("store.db-*"):
        data += wal.read_bytes()
    for value in (SECRET, LITERAL_NAME, LITERAL_EMAIL, "hunter2"):
        assert value.encode() not in data, value


def test_driver_metrics(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    run_app(tmp_path / "metrics.db")
    assert pipeline.flush(5.0)
    snapshot = pipeline.metrics.snapshot()

    def metric(name: str, **labels: str) -> dict[str, Any]:
        (found,) = [m for m in snapshot if m["name"] == name and m["labels"] == labels]
        return found

    assert metric("sqlx_driver_latency_ms", dialect="sqlite", op="handshake")["count"] == 1
    assert metric("sqlx_driver_latency_ms", dialect="sqlite", op="query")["count"] == 5
    assert metric("sqlx_driver_errors_total", dialect="sqlite", **{"class": "IntegrityError"})[
        "value"
    ] == 1.0
    assert metric("db.client.operation.duration", **{"db.system.name": "sqlite"})["count"] >= 6


def test_no_parent_starts_a_trace_per_statement(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("SELECT 1")
    conn.execute("SELECT 2")
    assert pipeline.flush(5.0)
    spans = [r for r in records(tmp_path) if r["kind"] == "span"]
    assert len(spans) == 3
    assert all(len(s["trace_id"]) == 32 for s in spans)
    assert spans[1]["trace_id"] != spans[2]["trace_id"]
    assert spans[0]["attributes"]["db.namespace"] == ":memory:"


def test_wall_clock_times(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    before = time.time_ns()
    sqlite3.connect(":memory:").execute("SELECT 1")
    after = time.time_ns()
    assert pipeline.flush(5.0)
    for span in (r for r in records(tmp_path) if r["kind"] == "span"):
        assert before <= span["start_ns"] <= span["end_ns"] <= after
