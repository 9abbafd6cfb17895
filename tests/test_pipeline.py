"""The native record path: Pipeline → ring → flusher → SQLite store and JSONL files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ats import _native, sql as _sql

import store_reader

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

    db = store_reader.connect(tmp_path / "ats.db")
    row = db.execute(
        "SELECT trace_id, span_id, parent_id, name, component, start_ns, end_ns, status, tenant, workspace,"
        " region, dialect, air_id, attributes FROM spans_v"
    ).fetchall()
    assert row == [(
        TRACE, "0000000000009f3a", "0000000000000011", "driver.query", "ats-sqlite3",
        1_760_623_265_345_000_000, 1_760_623_265_357_300_000, "ok", "acme", "prod-eu", "eu-west-2", "sqlite",
        "air:Q-00000000000000ff",
        '{"db.system":"sqlite","db.statement":"SELECT * FROM t WHERE id = ?","rows":42,"cached":false,"ratio":0.5}',
    )]
    [line] = [x for x in jsonl_lines(tmp_path) if x["kind"] == "span"]
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
    db = store_reader.connect(tmp_path / "ats.db")
    assert db.execute("SELECT event, severity, body, trace_id, span_id, attributes FROM logs_v").fetchall() == [
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
    assert stats["dropped"] == {"ring_full": 0, "too_large": 0, "closed": 0, "sink_error": 0, "decode_error": 0, "handoff_full": 0}
    assert store_reader.connect(tmp_path / "ats.db").execute("SELECT count(*) FROM spans_v").fetchone() == (n,)
    assert len([x for x in jsonl_lines(tmp_path) if x["kind"] == "span"]) == n
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
    assert store_reader.connect(tmp_path / "ats.db").execute("SELECT count(*) FROM spans_v").fetchone() == (1000,)


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
    rows = store_reader.connect(tmp_path / "ats.db").execute("SELECT component, span_id FROM spans_v ORDER BY span_id").fetchall()
    assert rows == [("parent", "0000000000000001"), ("child", "0000000000000002"), ("parent", "0000000000000003")]


SECRET_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def store_and_jsonl_bytes(tmp_path: Path) -> bytes:
    data = b""
    for f in sorted(tmp_path.rglob("*")):
        if f.is_file():
            data += f.read_bytes()
    return data


def test_secrets_and_pii_never_reach_any_sink(tmp_path: Path) -> None:
    p = make(tmp_path)
    p.record_span("tool.execute", "t", TRACE, 1, 0, 0, 1, 2,
                  {"error.message": f"auth failed for bob@example.com with {SECRET_TOKEN}",
                   "path": "/home/alice/project/app.py"})
    p.emit_log("sec.violation", "t", 17, f"ssn 123-45-6789 token {SECRET_TOKEN}", 5, TRACE, 1,
               {"dsn": "postgresql://app:hunter2pw@db:5432/prod"})
    assert p.shutdown(5.0)
    raw = store_and_jsonl_bytes(tmp_path)
    for leaked in (b"bob@example.com", SECRET_TOKEN.encode(), b"123-45-6789", b"hunter2pw", b"/home/alice"):
        assert leaked not in raw, leaked
    db = store_reader.connect(tmp_path / "ats.db")
    (attrs,) = db.execute("SELECT attributes FROM spans_v").fetchone()
    assert json.loads(attrs)["path"] == "~/project/app.py"
    (body,) = db.execute("SELECT body FROM logs_v").fetchone()
    assert "[SSN]" in body and "[API_KEY]" in body


def test_redaction_can_be_turned_off_explicitly(tmp_path: Path) -> None:
    p = make(tmp_path, redact=False)
    p.record_span("tool.execute", "t", TRACE, 1, 0, 0, 1, 1, {"note": "mail bob@example.com"})
    assert p.shutdown(5.0)
    assert b"bob@example.com" in store_and_jsonl_bytes(tmp_path)


def test_extra_scrub_patterns_apply_in_the_pipeline(tmp_path: Path) -> None:
    p = make(tmp_path, scrub_patterns=[("ticket", r"TICKET-\d+", "[TICKET]")])
    p.record_span("tool.execute", "t", TRACE, 1, 0, 0, 1, 1, {"note": "see TICKET-4242"})
    assert p.shutdown(5.0)
    (attrs,) = store_reader.connect(tmp_path / "ats.db").execute("SELECT attributes FROM spans_v").fetchone()
    assert json.loads(attrs) == {"note": "see [TICKET]"}
    with pytest.raises(ValueError, match="broken"):
        _native.Pipeline(scrub_patterns=[("broken", "(", "[X]")])


def test_tail_sampling_keeps_failed_and_slow_traces_whole(tmp_path: Path) -> None:
    p = make(tmp_path, tail_latency_ms=100.0, tail_base_ratio=0.0)
    ms = 1_000_000
    traces = {"fast": "1" * 32, "slow": "2" * 32, "failed": "3" * 32}
    for kind, trace in traces.items():
        child_end = 150 * ms if kind == "slow" else 5 * ms
        child_status = 2 if kind == "failed" else 1
        p.record_span("driver.query", "t", trace, 2, 1, 0, child_end, child_status)
        p.record_span("app.request", "t", trace, 1, 0, 0, child_end + ms, 1)
    assert p.shutdown(5.0)
    rows = store_reader.connect(tmp_path / "ats.db").execute(
        "SELECT trace_id, count(*) FROM spans_v GROUP BY trace_id ORDER BY trace_id").fetchall()
    assert rows == [(traces["slow"], 2), (traces["failed"], 2)]


def test_metrics_are_exported_as_points_at_shutdown(tmp_path: Path) -> None:
    metrics = _native.Metrics()
    latency = metrics.histogram("sqlx_driver_latency_ms", "ms")
    errors = metrics.counter("sqlx_driver_errors_total", "1")
    for v in (1.0, 2.0, 3.0, 400.0):
        latency.record(v, {"dialect": "sqlite", "op": "query"})
    errors.add(2, {"dialect": "sqlite", "class": "OperationalError"})
    p = make(tmp_path, metrics=metrics, metrics_interval_ms=3_600_000)
    assert p.shutdown(5.0)
    db = store_reader.connect(tmp_path / "ats.db")
    rows = db.execute("SELECT name, unit, kind, labels, value, tenant FROM metric_points ORDER BY name").fetchall()
    assert rows == [
        ("sqlx_driver_errors_total", "1", "counter", '{"class":"OperationalError","dialect":"sqlite"}', 2.0, "acme"),
        ("sqlx_driver_latency_ms", "ms", "histogram", '{"dialect":"sqlite","op":"query"}', 406.0, "acme"),
    ]
    (hist,) = db.execute("SELECT histogram FROM metric_points WHERE kind = 'histogram'").fetchone()
    h = json.loads(hist)
    assert (h["count"], h["sum"], h["min"], h["max"]) == (4, 406.0, 1.0, 400.0)
    assert sum(h["counts"]) == 4
    assert latency.quantile(0.5, {"dialect": "sqlite", "op": "query"}) == pytest.approx(2.0, rel=0.01)


def test_record_query_builds_the_driver_span_and_metrics(tmp_path: Path) -> None:
    p = make(tmp_path)
    sql = "SELECT name FROM users WHERE email = 'bob@example.com' AND age > 42"
    span_id = p.record_query(1, "sqlite", sql, 1_000, 3_001_000, trace_id=TRACE, parent_span_id=5,
                             component="ats-sqlite3", db_namespace="app.db", rows=3)
    failed = p.record_query(1, "sqlite", "SELEC oops", 10, 20, error_type="OperationalError", trace_id=TRACE,
                            parent_span_id=5)
    root = p.record_query(0, "sqlite", None, 0, 1_000_000)  # handshake outside any trace: new root trace
    assert span_id != 0 and failed != 0 and root != 0 and len({span_id, failed, root}) == 3
    assert p.shutdown(5.0)
    db = store_reader.connect(tmp_path / "ats.db")
    rows = db.execute("SELECT name, status, span_id, parent_id, air_id, attributes FROM spans_v"
                      " WHERE trace_id = ? ORDER BY start_ns", (TRACE,)).fetchall()
    air_id = _sql.normalize(sql, "sqlite").air_id
    assert rows[0][:5] == ("driver.query", "error", f"{failed:016x}", "0000000000000005", _sql.normalize("SELEC oops", "sqlite").air_id)
    assert rows[1][:5] == ("driver.query", "ok", f"{span_id:016x}", "0000000000000005", air_id)
    assert json.loads(rows[1][5]) == {
        "sqlx.tenant": "acme", "sqlx.workspace": "prod-eu",
        "db.system": "sqlite", "db.system.name": "sqlite",
        "db.statement": "SELECT name FROM users WHERE email = ? AND age > ?",
        "db.query.text": "SELECT name FROM users WHERE email = ? AND age > ?",
        "db.operation": "SELECT", "db.operation.name": "SELECT",
        "db.collection.name": "users", "db.query.summary": "SELECT users",
        "db.namespace": "app.db", "db.response.returned_rows": 3, "db.sqlx.air_id": air_id,
    }
    assert json.loads(rows[0][5])["error.type"] == "OperationalError"
    (handshake,) = db.execute("SELECT count(*) FROM spans_v WHERE name = 'driver.handshake' AND parent_id IS NULL").fetchone()
    assert handshake == 1
    metrics = {(m[0], m[1]): m[2] for m in db.execute("SELECT name, labels, value FROM metric_points")}
    assert metrics[("sqlx_driver_errors_total", '{"class":"OperationalError","dialect":"sqlite"}')] == 1.0
    lat = json.loads(db.execute("SELECT histogram FROM metric_points WHERE name = 'sqlx_driver_latency_ms'"
                                " AND labels = '{\"dialect\":\"sqlite\",\"op\":\"query\"}'").fetchone()[0])
    assert lat["count"] == 2 and lat["max"] == pytest.approx(3.0, rel=0.01)
    dur = db.execute("SELECT labels FROM metric_points WHERE name = 'db.client.operation.duration'").fetchall()
    assert ('{"db.system.name":"sqlite"}',) in dur


def test_driver_metrics_count_every_call_once_kept_sampled_out_or_dropped(tmp_path: Path) -> None:
    # A kept call's metrics are recorded by the flusher when it decodes the record; a call
    # sampled out or dropped because the ring was full is recorded on the spot.
    p = make(tmp_path, sample_ratio=0.5, ring_bytes=4096, flush_interval_ms=60_000,
             metrics_interval_ms=3_600_000)
    kept = [p.record_query(1, "sqlite", "SELECT 1 FROM t", 0, 2_000_000) for _ in range(300)]
    stats = p.stats()
    assert p.shutdown(5.0)
    pushed, full = stats["pushed"], stats["dropped"]["ring_full"]
    assert pushed == sum(1 for k in kept if k) > 0
    assert full > 0 and 300 - pushed - full > 0  # all three fates occurred
    db = store_reader.connect(tmp_path / "ats.db")
    assert db.execute("SELECT count(*) FROM spans_v").fetchone() == (pushed,)
    lat = json.loads(db.execute("SELECT histogram FROM metric_points WHERE name = 'sqlx_driver_latency_ms'"
                                " AND labels = '{\"dialect\":\"sqlite\",\"op\":\"query\"}'").fetchone()[0])
    assert (lat["count"], lat["sum"]) == (300, pytest.approx(600.0))
    (dur,) = db.execute("SELECT histogram FROM metric_points WHERE name = 'db.client.operation.duration'").fetchone()
    assert json.loads(dur)["count"] == 300


def test_record_query_rejects_bad_op_and_dialect() -> None:
    p = _native.Pipeline()
    with pytest.raises(ValueError, match="op must be"):
        p.record_query(9, "sqlite", "SELECT 1", 0, 1)
    with pytest.raises(ValueError, match="postgresql"):
        p.record_query(1, "db2", "SELECT 1", 0, 1)


def test_generated_ids_are_well_formed() -> None:
    ids = {_native.Pipeline.new_span_id() for _ in range(1000)}
    assert len(ids) == 1000 and 0 not in ids and max(ids) < 2**64
    t = _native.Pipeline.new_trace_id()
    assert len(t) == 32 and int(t, 16) != 0


def test_retention_prunes_old_records_when_the_store_opens(tmp_path: Path) -> None:
    old, new = 1_000_000_000, time.time_ns()
    p = make(tmp_path)
    p.record_span("kernel.exec", "t", TRACE, 1, 0, old, old + 5, 1)
    p.record_span("kernel.exec", "t", "5" * 32, 2, 0, new, new + 5, 1)
    p.emit_log("policy.deny", "t", 9, "", old)
    assert p.shutdown(5.0)
    make(tmp_path, retention_days=(30, 30, 400, 90)).shutdown(5.0)
    db = store_reader.connect(tmp_path / "ats.db")
    assert db.execute("SELECT trace_id FROM spans_v").fetchall() == [("5" * 32,)]
    assert db.execute("SELECT count(*) FROM logs_v").fetchone() == (0,)


def test_store_query_reads_a_store_this_process_is_writing(tmp_path: Path) -> None:
    """The in-process reader shares the writer's SQLite: reading while the flusher writes, many
    times over, neither crashes the process nor misses committed rows (tests/store_reader.py)."""
    p = make(tmp_path, flush_interval_ms=1)
    path = str(tmp_path / "ats.db")
    seen = 0
    for i in range(200):
        p.record_span("tick", "test", TRACE, i + 1, 0, 1_000 + i, 2_000 + i, 1, {"i": i})
        if i % 20 == 19:
            assert p.flush(5.0)
            (count,) = _native.store_query(path, "SELECT count(*) FROM spans_v")[0]
            assert count == i + 1 and count > seen
            seen = count
    assert _native.store_query(path, "SELECT span_id, name FROM spans_v WHERE start_ns >= ? AND name = ?"
                               " ORDER BY start_ns LIMIT 2", [1_198, "tick"]) == [
        ("00000000000000c7", "tick"), ("00000000000000c8", "tick")]
    assert _native.store_query(path, "SELECT NULL, 1.5, x'00ff', ?", [None]) == [(None, 1.5, b"\x00\xff", None)]
    assert p.shutdown(5.0)
    with pytest.raises(RuntimeError, match="readonly|read-only"):
        _native.store_query(path, "DELETE FROM spans")
    with pytest.raises(TypeError, match="unsupported parameter type dict"):
        _native.store_query(path, "SELECT ?", [{}])
