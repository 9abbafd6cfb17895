"""The native record path: Pipeline → ring → flusher → SQLite store and JSONL files."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from ats import _native

TRACE = "4a1b0000000000000000000000009f3a"


def make(tmp_path: Path, **kw: object) -> _native.Pipeline:
    return _native.Pipeline(
        store_path=str(tmp_path / "ats.db"),
        jsonl_dir=str(tmp_path / "jsonl"),
        tenant="acme",
        workspace="prod-eu",
        region="eu-west-2",
        **kw,  # type: ignore[arg-type]
    )


def jsonl_lines(tmp_path: Path) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for f in sorted((tmp_path / "jsonl").glob("*.jsonl")):
        lines += [json.loads(line) for line in f.read_text().splitlines()]
    return lines


def test_span_reaches_store_and_jsonl_exactly(tmp_path: Path) -> None:
    p = make(tmp_path)
    ok = p.record_span(
        "driver.query", "ats-sqlite3", TRACE, 0x9F3A, 0x11, 1_760_623_265_345_000_000, 1_760_623_265_357_300_000, 1,
        {"db.system": "sqlite", "db.statement": "SELECT * FROM t WHERE id = ?", "rows": 42, "cached": False, "ratio": 0.5},
        dialect="sqlite", air_id="air:Q-00000000000000ff",
    )
    assert ok is True
    assert p.shutdown(5.0) is True

    db = sqlite3.connect(tmp_path / "ats.db")
    row = db.execute(
        "SELECT trace_id, span_id, parent_id, name, component, start_ns, end_ns, status, tenant, workspace,"
        " region, dialect, air_id, attributes FROM spans"
    ).fetchall()
    assert row == [(
        TRACE, "0000000000009f3a", "0000000000000011", "driver.query", "ats-sqlite3",
        1_760_623_265_345_000_000, 1_760_623_265_357_300_000, "ok", "acme", "prod-eu", "eu-west-2", "sqlite",
        "air:Q-00000000000000ff",
        '{"db.system":"sqlite","db.statement":"SELECT * FROM t WHERE id = ?","rows":42,"cached":false,"ratio":0.5}',
    )]
    [line] = jsonl_lines(tmp_path)
    assert line["ts"] == "2025-10-16T14:01:05.345Z"
    assert line["evt"] == "driver.query.ok"
    assert line["trace_id"] == TRACE and line["span_id"] == "0000000000009f3a"
    assert line["air_id"] == "air:Q-00000000000000ff"
    assert line["attributes"] == {
        "db.system": "sqlite", "db.statement": "SELECT * FROM t WHERE id = ?", "rows": 42, "cached": False, "ratio": 0.5
    }


def test_log_record(tmp_path: Path) -> None:
    p = make(tmp_path)
    assert p.emit_log("policy.deny", "policy", 13, "egress blocked", 1_760_623_402_111_000_000, TRACE, 0xEF,
                      {"reason": "residency"})
    assert p.shutdown(5.0)
    db = sqlite3.connect(tmp_path / "ats.db")
    assert db.execute("SELECT event, severity, body, trace_id, span_id, attributes FROM logs").fetchall() == [
        ("policy.deny", 13, "egress blocked", TRACE, "00000000000000ef", '{"reason":"residency"}')
    ]


def test_zero_loss_on_clean_shutdown_and_exact_counts(tmp_path: Path) -> None:
    p = make(tmp_path)
    n = 20_000
    for i in range(n):
        assert p.record_span("kernel.exec", "bench", TRACE, i + 1, 0, i, i + 10, 1, {"i": i})
    assert p.shutdown(10.0)
    stats = p.stats()
    assert stats["pushed"] == n
    assert stats["dropped"] == {"ring_full": 0, "too_large": 0, "closed": 0, "sink_error": 0, "decode_error": 0}
    assert sqlite3.connect(tmp_path / "ats.db").execute("SELECT count(*) FROM spans").fetchone() == (n,)
    assert len(jsonl_lines(tmp_path)) == n
    # After shutdown the pipeline refuses politely and counts it.
    assert p.record_span("kernel.exec", "bench", TRACE, 1, 0, 0, 1, 1) is False
    assert p.stats()["dropped"]["closed"] == 1


def test_drops_are_counted_never_raised() -> None:
    p = _native.Pipeline(ring_bytes=64 * 1024, flush_interval_ms=60_000)
    big = {"payload": "x" * 1000}
    results = [p.record_span("kernel.exec", "t", TRACE, i + 1, 0, 0, 1, 1, big) for i in range(1_000)]
    # Larger than the whole ring: refused as too_large, deterministically.
    huge = p.record_span("kernel.exec", "t", TRACE, 5_000, 0, 0, 1, 1, {"payload": "x" * 200_000})
    stats = p.stats()
    accepted = results.count(True)
    # Whether the flusher kept up is timing; the accounting is exact either way.
    assert accepted + stats["dropped"]["ring_full"] == 1_000
    assert stats["pushed"] == accepted
    assert huge is False and stats["dropped"]["too_large"] == 1


def test_bad_arguments_are_value_errors(tmp_path: Path) -> None:
    p = _native.Pipeline()
    with pytest.raises(ValueError, match="trace_id"):
        p.record_span("a", "b", "xyz", 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match="status"):
        p.record_span("a", "b", TRACE, 1, 0, 0, 1, 7)
    with pytest.raises(ValueError, match="air:Q-"):
        p.record_span("a", "b", TRACE, 1, 0, 0, 1, 1, air_id="Q-1")
    with pytest.raises(ValueError, match="store"):
        _native.Pipeline(store_path="/proc/definitely/not/writable/ats.db")


def test_flush_respects_its_deadline(tmp_path: Path) -> None:
    p = make(tmp_path)
    for i in range(1000):
        p.record_span("kernel.exec", "t", TRACE, i + 1, 0, 0, 1, 1)
    t0 = time.monotonic()
    assert p.flush(5.0) is True
    assert time.monotonic() - t0 < 5.0
    assert sqlite3.connect(tmp_path / "ats.db").execute("SELECT count(*) FROM spans").fetchone() == (1000,)


def test_forked_child_gets_a_fresh_pipeline(tmp_path: Path) -> None:
    p = make(tmp_path)
    assert p.record_span("kernel.exec", "parent", TRACE, 1, 0, 0, 1, 1)
    assert p.flush(5.0)
    pid = os.fork()
    if pid == 0:  # child: record and flush through its own ring and flusher
        ok = p.record_span("kernel.exec", "child", TRACE, 2, 0, 0, 1, 1) and p.shutdown(5.0)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert p.record_span("kernel.exec", "parent", TRACE, 3, 0, 0, 1, 1)
    assert p.shutdown(5.0)
    rows = sqlite3.connect(tmp_path / "ats.db").execute("SELECT component, span_id FROM spans ORDER BY span_id").fetchall()
    assert rows == [("parent", "0000000000000001"), ("child", "0000000000000002"), ("parent", "0000000000000003")]
