"""`ats` CLI against stores written by the real native pipeline (ats._native.Pipeline)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ats import _native, cli
from ats.cli import PruneCounts, apply_retention, main, parse_when
from ats.config import load_config
from ats.registry import validate_file

MS = 1_000_000
DAY = 86_400 * 10**9

TRACE_A = "aaaa0000000000000000000000000001"  # recent: kernel.exec + driver queries, one error
TRACE_B = "aaab0000000000000000000000000002"  # 10 days old: agent.lifecycle
TRACE_C = "c0ffee00000000000000000000000003"  # 40 days old: task.execution, error


@dataclass
class Store:
    home: Path
    now: int  # reference time (ns, a whole millisecond)
    a0: int  # start of trace A
    b0: int
    c0: int
    q1: int  # span ids of A's queries
    q2: int

    @property
    def db(self) -> Path:
        return self.home / "ats.db"


def _pipeline(home: Path) -> _native.Pipeline:
    return _native.Pipeline(store_path=str(home / "ats.db"), jsonl_dir=str(home / "jsonl"),
                            tenant="acme", workspace="prod-eu", region="eu-west-2", flush_interval_ms=20)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.chdir(tmp_path)  # no stray config file; relative defaults land here
    for k in [k for k in os.environ if k.startswith(("ATS_", "OTEL_"))]:
        monkeypatch.delenv(k)
    home = tmp_path / "home"
    p = _pipeline(home)
    now = time.time_ns() // MS * MS
    a0, b0, c0 = now - 2 * 3600 * 10**9, now - 10 * DAY, now - 40 * DAY
    # Trace A: root kernel.exec (10 ms), two driver queries, a nested cache.hit and a log.
    p.record_span("kernel.exec", "kernel", TRACE_A, 0x10, 0, a0, a0 + 10 * MS, 1, {"sqlx.class": "L"},
                  dialect="sqlite")
    q1 = p.record_query(1, "sqlite", "SELECT name FROM users WHERE age > 42", a0 + 1 * MS, a0 + 3 * MS,
                        trace_id=TRACE_A, parent_span_id=0x10, component="sqlite3", rows=2)
    q2 = p.record_query(1, "sqlite", "UPDATE users SET plan = 'pro' WHERE id = 7", a0 + 5 * MS, a0 + 9 * MS,
                        error_type="OperationalError", trace_id=TRACE_A, parent_span_id=0x10,
                        component="sqlite3")
    p.record_span("cache.hit", "kernel", TRACE_A, 0x11, q1, a0 + 1 * MS + 500_000, a0 + 2 * MS, 0)
    p.emit_log("policy.deny", "policy", 13, "cross-region egress blocked", a0 + 4 * MS, TRACE_A, 0x10,
               {"reason": "residency=eu"})
    # Trace B: 10 days old.
    p.record_span("agent.lifecycle", "agent", TRACE_B, 0x20, 0, b0, b0 + 2 * MS, 1,
                  {"agent_id": "a-1", "state_from": "idle", "state_to": "running"})
    p.record_span("task.assigned", "scheduler", TRACE_B, 0x21, 0x20, b0 + MS, b0 + 2 * MS, 1)
    # Trace C: 40 days old, failed, with a log.
    p.record_span("task.execution", "scheduler", TRACE_C, 0x30, 0, c0, c0 + 5 * MS, 2,
                  {"error.type": "Timeout", "task_id": "t-9"})
    p.record_span("swarm.iteration", "swarm", TRACE_C, 0x31, 0x30, c0 + MS, c0 + 4 * MS, 1, {"iteration": 3})
    p.emit_log("task.execution", "scheduler", 17, "task t-9 timed out", c0 + 5 * MS, TRACE_C, 0x30)
    assert p.shutdown(10.0)
    return Store(home, now, a0, b0, c0, q1, q2)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns // MS % 1000:03d}Z"


# ------------------------------------------------------------------------------------ trace list


def test_trace_list_json_exact(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", "list", "--json", "--home", str(store.home))
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"trace_id": TRACE_A, "name": "kernel.exec", "start": iso(store.a0), "duration_ms": 10.0,
         "spans": 4, "status": "error"},
        {"trace_id": TRACE_B, "name": "agent.lifecycle", "start": iso(store.b0), "duration_ms": 2.0,
         "spans": 2, "status": "ok"},
        {"trace_id": TRACE_C, "name": "task.execution", "start": iso(store.c0), "duration_ms": 5.0,
         "spans": 2, "status": "error"},
    ]


def test_trace_list_table_newest_first(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--home", str(store.home), "trace", "list")
    assert code == 0
    assert out.splitlines() == [
        "TRACE ID                          START (UTC)                DURATION  SPANS  STATUS  NAME",
        f"{TRACE_A}  {iso(store.a0)}  10.000 ms      4  error   kernel.exec",
        f"{TRACE_B}  {iso(store.b0)}   2.000 ms      2  ok      agent.lifecycle",
        f"{TRACE_C}  {iso(store.c0)}   5.000 ms      2  error   task.execution",
    ]


def test_trace_list_limit_and_ranges(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    h = ("--home", str(store.home))

    def ids(*args: str) -> list[str]:
        code, out, err = run(capsys, "trace", "list", "--json", *h, *args)
        assert (code, err) == (0, ""), err
        return [t["trace_id"] for t in json.loads(out)]

    assert ids("--limit", "1") == [TRACE_A]
    assert ids("--from", "3h") == [TRACE_A]
    assert ids("--from", "11d", "--to", "1d") == [TRACE_B]
    assert ids("--to", "30d") == [TRACE_C]
    assert ids("--from", "2w") == [TRACE_A, TRACE_B]
    b_day = iso(store.b0)[:10]
    assert ids("--from", b_day, "--to", b_day) == [TRACE_B]  # a plain --to date includes that day
    assert ids("--from", iso(store.b0), "--to", iso(store.b0 + MS)) == [TRACE_B]
    assert ids("--from", "1m") == []
    code, out, _ = run(capsys, "trace", "list", *h, "--from", "1m")
    assert (code, out) == (0, f"no traces in {store.db} in that time range\n")


def test_trace_list_bad_arguments(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", "list", "--home", str(store.home), "--from", "yesterday")
    assert (code, out) == (2, "")
    assert err == ("ats: cannot read the date 'yesterday': use 2025-10-16, 2025-10-16T14:00[:00][Z|+02:00] "
                   "or an age like 30m, 2h, 7d\n")
    code, _, err = run(capsys, "trace", "list", "--limit", "0")
    assert code == 2 and "'0' must be at least 1" in err


def test_parse_when() -> None:
    now = 1_760_623_265 * 10**9  # 2025-10-16T14:01:05Z
    assert parse_when("2h", now_ns=now) == now - 7200 * 10**9
    assert parse_when("7d", now_ns=now) == now - 7 * DAY
    assert parse_when("90s", now_ns=now) == now - 90 * 10**9
    assert parse_when("2025-10-16", now_ns=now) == 1_760_572_800 * 10**9
    assert parse_when("2025-10-16", now_ns=now, end=True) == 1_760_572_800 * 10**9 + DAY
    assert parse_when("2025-10-16T14:01:05Z", now_ns=now) == now
    assert parse_when("2025-10-16T14:01:05", now_ns=now) == now
    assert parse_when("2025-10-16T16:01:05.5+02:00", now_ns=now) == now + 500 * MS


# ------------------------------------------------------------------------------------ trace show


def test_trace_show_json_exact(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", "show", "aaaa", "--json", "--home", str(store.home))
    assert (code, err) == (0, "")
    doc = json.loads(out)
    a0 = store.a0
    q1, q2 = f"{store.q1:016x}", f"{store.q2:016x}"
    common = {"db.system": "sqlite", "db.system.name": "sqlite", "db.collection.name": "users"}
    assert doc == {
        "trace_id": TRACE_A,
        "spans": [
            {"span_id": "0000000000000010", "parent_id": None, "name": "kernel.exec", "start_ns": a0,
             "end_ns": a0 + 10 * MS, "status": "ok", "attributes": {"sqlx.class": "L"}},
            {"span_id": q1, "parent_id": "0000000000000010", "name": "driver.query", "start_ns": a0 + MS,
             "end_ns": a0 + 3 * MS, "status": "ok",
             "attributes": doc["spans"][1]["attributes"]},
            {"span_id": "0000000000000011", "parent_id": q1, "name": "cache.hit",
             "start_ns": a0 + MS + 500_000, "end_ns": a0 + 2 * MS, "status": "unset", "attributes": {}},
            {"span_id": q2, "parent_id": "0000000000000010", "name": "driver.query", "start_ns": a0 + 5 * MS,
             "end_ns": a0 + 9 * MS, "status": "error",
             "attributes": doc["spans"][3]["attributes"]},
        ],
    }
    a1, a2 = doc["spans"][1]["attributes"], doc["spans"][3]["attributes"]
    assert {k: a1[k] for k in common} == common
    assert a1["db.statement"] == "SELECT name FROM users WHERE age > ?"
    assert a1["db.response.returned_rows"] == 2
    assert a2["db.statement"] == "UPDATE users SET plan = ? WHERE id = ?"
    assert a2["error.type"] == "OperationalError"


def test_trace_show_tree_exact(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", "show", TRACE_A, "--home", str(store.home))
    assert (code, err) == (0, "")
    bar = "█"
    assert out.splitlines() == [
        f"trace {TRACE_A}  kernel.exec  {iso(store.a0)}  10.000 ms  4 spans  error",
        f"  kernel.exec      |{bar * 40}|    10.000 ms  ok",
        f"  ├─ driver.query  |    {bar * 8}                            |     2.000 ms  ok     "
        "db.statement=SELECT name FROM users WHERE age > ?",
        f"  │  └─ cache.hit  |      {bar * 2}                                |     0.500 ms  unset",
        f"  └─ driver.query  |                    {bar * 16}    |     4.000 ms  error  "
        "error.type=OperationalError  db.statement=UPDATE users SET plan = ? WHERE id = ?",
        "logs",
        "  +   4.000 ms  WARN   policy.deny  cross-region egress blocked",
    ]


def test_trace_show_ascii_when_the_terminal_cannot_encode(store: Store) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "PYTHONPATH": str(Path(cli.__file__).parent.parent)}
    r = subprocess.run([sys.executable, "-m", "ats.cli", "--home", str(store.home), "trace", "show", "c0ff"],
                       capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1:3] == [
        f"  task.execution      |{'#' * 40}|     5.000 ms  error  error.type=Timeout",
        f"  `- swarm.iteration  |        {'#' * 24}        |     3.000 ms  ok",
    ]


def test_trace_id_prefix_errors(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    h = ("--home", str(store.home))
    assert run(capsys, "trace", "show", "aaa", *h) == (
        1, "", f"ats: trace id prefix 'aaa' is ambiguous: {TRACE_A}, {TRACE_B}\n")
    assert run(capsys, "trace", "show", "bbbb", *h) == (1, "", "ats: no trace 'bbbb' in the store\n")
    assert run(capsys, "trace", "show", "xyz", *h) == (
        1, "", "ats: 'xyz' is not a trace id (1 to 32 hex digits)\n")
    code, out, _ = run(capsys, "trace", "show", "C0FFEE", "--json", *h)  # case-insensitive
    assert code == 0 and json.loads(out)["trace_id"] == TRACE_C


# ------------------------------------------------------------------------------------ export


def test_export_jsonl_is_what_the_sink_wrote(store: Store, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out_file = tmp_path / "a.jsonl"
    code, out, err = run(capsys, "trace", "export", "aaaa", "--format", "jsonl", "--output", str(out_file),
                         "--home", str(store.home))
    assert (code, err) == (0, "")
    assert out == f"exported 4 spans and 1 log of trace {TRACE_A} to {out_file} (jsonl)\n"
    exported = out_file.read_text(encoding="utf-8").splitlines()
    sink = [line for f in sorted((store.home / "jsonl").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if TRACE_A in line]
    assert len(exported) == 5
    assert sorted(exported) == sorted(sink)  # byte for byte, in tree order instead of arrival order
    report = validate_file(out_file)
    assert (report.ok, report.lines, report.kinds) == (True, 5, {"span": 4, "log": 1})


def test_export_otlp_json_shape(store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "a.otlp.json"
    code, _, err = run(capsys, "trace", "export", "aaaa", "--format", "otlp-json", "-o", str(out_file),
                       "--home", str(store.home))
    assert (code, err) == (0, "")
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    assert list(doc) == ["resourceSpans"]
    [resource] = doc["resourceSpans"]
    assert resource["resource"] == {"attributes": [
        {"key": "sqlx.tenant", "value": {"stringValue": "acme"}},
        {"key": "sqlx.workspace", "value": {"stringValue": "prod-eu"}},
        {"key": "cloud.region", "value": {"stringValue": "eu-west-2"}},
    ]}
    scopes = {s["scope"]["name"]: s["spans"] for s in resource["scopeSpans"]}
    assert sorted(scopes) == ["kernel", "sqlite3"]
    assert all(s["scope"]["version"] == _native.__version__ for s in resource["scopeSpans"])
    root = scopes["kernel"][0]
    assert root == {
        "traceId": TRACE_A, "spanId": "0000000000000010", "name": "kernel.exec", "kind": 1,
        "startTimeUnixNano": str(store.a0), "endTimeUnixNano": str(store.a0 + 10 * MS),
        "attributes": [{"key": "sqlx.class", "value": {"stringValue": "L"}}],
        "events": [{"timeUnixNano": str(store.a0 + 4 * MS), "name": "policy.deny", "attributes": [
            {"key": "log.severity_number", "value": {"intValue": "13"}},
            {"key": "log.body", "value": {"stringValue": "cross-region egress blocked"}},
            {"key": "reason", "value": {"stringValue": "residency=eu"}},
        ]}],
        "status": {"code": 1},
    }
    assert scopes["kernel"][1]["status"] == {} and scopes["kernel"][1]["parentSpanId"] == f"{store.q1:016x}"
    q_ok, q_err = scopes["sqlite3"]
    assert (q_ok["kind"], q_ok["status"], q_ok["parentSpanId"]) == (3, {"code": 1}, "0000000000000010")
    assert q_err["status"] == {"code": 2, "message": "OperationalError"}
    attrs = {a["key"]: a["value"] for a in q_ok["attributes"]}
    assert attrs["db.response.returned_rows"] == {"intValue": "2"}
    assert attrs["db.statement"] == {"stringValue": "SELECT name FROM users WHERE age > ?"}
    assert attrs["db.sqlx.air_id"]["stringValue"].startswith("air:Q-")
    for span in q_ok, q_err, root:
        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
        for a in span["attributes"]:
            assert list(a) == ["key", "value"] and len(a["value"]) == 1
            assert next(iter(a["value"])) in ("stringValue", "intValue", "doubleValue", "boolValue")


def test_export_chrome_has_exactly_the_spans(store: Store, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out_file = tmp_path / "a.chrome.json"
    code, _, err = run(capsys, "trace", "export", "aaaa", "--format", "chrome", "--output", str(out_file),
                       "--home", str(store.home))
    assert (code, err) == (0, "")
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    events = doc["traceEvents"]
    assert [(e["name"], e["ph"], e["ts"], e["dur"], e["pid"], e["tid"], e["args"]["span_id"]) for e in events] == [
        ("kernel.exec", "X", 0.0, 10000.0, 1, 1, "0000000000000010"),
        ("driver.query", "X", 1000.0, 2000.0, 1, 1, f"{store.q1:016x}"),
        ("cache.hit", "X", 1500.0, 500.0, 1, 1, "0000000000000011"),
        ("driver.query", "X", 5000.0, 4000.0, 1, 1, f"{store.q2:016x}"),
    ]
    assert events[0]["cat"] == "kernel" and events[0]["args"] == {
        "sqlx.class": "L", "span_id": "0000000000000010", "parent_id": None, "status": "ok"}
    assert doc["otherData"] == {"trace_id": TRACE_A, "start_unix_ns": store.a0}


def test_chrome_lanes_for_overlapping_siblings() -> None:
    def span(i: int, start: int, end: int, parent: int | None = 1) -> Any:
        return cli._Span(i, parent, f"s{i}", "c", start, end, "ok", "{}", "", "", "", "", None, None)

    spans = [span(1, 0, 100, None), span(2, 10, 60), span(3, 20, 80), span(4, 30, 40, 3), span(5, 85, 95)]
    events = cli.chrome_trace("00" * 16, spans)["traceEvents"]
    # s3 overlaps s2 without nesting in it: a second lane; s4 nests in s3; s5 fits back in lane 1.
    assert [(e["name"], e["tid"]) for e in events] == [("s1", 1), ("s2", 1), ("s3", 2), ("s4", 2), ("s5", 1)]


def test_export_errors(store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "trace", "export", "aaaa", "--format", "pdf", "-o", "x", "--home", str(store.home))
    assert code == 2 and "invalid choice: 'pdf'" in err
    code, out, err = run(capsys, "trace", "export", "aaaa", "--format", "jsonl", "-o",
                         str(tmp_path / "missing" / "x.jsonl"), "--home", str(store.home))
    assert (code, out) == (1, "")
    assert err == f"ats: cannot write {tmp_path / 'missing' / 'x.jsonl'}: No such file or directory\n"


# ------------------------------------------------------------------------------------ prune


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("traces", "spans", "logs", "metric_points", "rewards")}
    finally:
        conn.close()


def test_trace_prune_counts_exact(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    before = counts(store.db)
    assert before == {"traces": 3, "spans": 8, "logs": 2, "metric_points": before["metric_points"], "rewards": 0}
    assert before["metric_points"] > 0
    h = ("--home", str(store.home))
    assert run(capsys, "trace", "prune", "--older-than", "30", *h) == (
        0, f"pruned 1 trace (2 spans) and 1 log older than 30 days from {store.db}\n", "")
    assert counts(store.db) == {**before, "traces": 2, "spans": 6, "logs": 1}
    assert run(capsys, "trace", "prune", "--older-than", "30", *h) == (
        0, f"pruned 0 traces (0 spans) and 0 logs older than 30 days from {store.db}\n", "")
    code, out, _ = run(capsys, "trace", "prune", "--older-than", "7d", "--json", *h)
    assert (code, json.loads(out)) == (0, {"older_than_days": 7, "traces": 1, "spans": 2, "logs": 0})
    code, out, _ = run(capsys, "trace", "list", "--json", *h)
    assert [t["trace_id"] for t in json.loads(out)] == [TRACE_A]


@pytest.mark.parametrize("days", ["0", "366", "-1", "x"])
def test_trace_prune_days_range(store: Store, capsys: pytest.CaptureFixture[str], days: str) -> None:
    code, out, err = run(capsys, "trace", "prune", "--older-than", days, "--home", str(store.home))
    assert (code, out) == (2, "")
    assert "--older-than" in err
    assert counts(store.db)["traces"] == 3


def test_prune_straddling_trace_keeps_new_spans_and_recomputes(tmp_path: Path) -> None:
    home = tmp_path / "h"
    p = _pipeline(home)
    now = time.time_ns()
    t = "0123456789abcdef0123456789abcdef"
    p.record_span("kernel.exec", "k", t, 1, 0, now - 5 * DAY, now - 5 * DAY + MS, 2)
    p.record_span("kernel.retry", "k", t, 2, 1, now - DAY, now - DAY + 3 * MS, 1)
    assert p.shutdown(10.0)
    got = cli.prune_store(home / "ats.db", spans_before_ns=now - 2 * DAY)
    assert got == PruneCounts(traces=0, spans=1)
    conn = sqlite3.connect(home / "ats.db")
    assert conn.execute("SELECT start_ns, end_ns, span_count, error_count FROM traces").fetchall() == [
        (now - DAY, now - DAY + 3 * MS, 1, 0)]


def test_apply_retention_uses_config(store: Store) -> None:
    before = counts(store.db)
    cfg = load_config(overrides={"retention.traces_days": 5, "retention.logs_days": 50,
                                 "retention.metrics_days": 1, "retention.learning_days": 0})
    # metric points were exported at about `now`: two days later they are past a 1-day retention
    got = apply_retention(store.db, cfg, now_ns=store.now + 2 * DAY)
    assert got == PruneCounts(traces=2, spans=4, logs=0, metric_points=before["metric_points"], rewards=0)
    assert counts(store.db) == {"traces": 1, "spans": 4, "logs": 2, "metric_points": 0, "rewards": 0}


def test_apply_retention_defaults_and_missing_store(store: Store, tmp_path: Path) -> None:
    assert apply_retention(tmp_path / "nowhere" / "ats.db") == PruneCounts()
    assert not (tmp_path / "nowhere").exists()
    # defaults (seed 000 §8.4): traces/logs 30 d -> trace C and its log go
    assert apply_retention(store.db, load_config()) == PruneCounts(traces=1, spans=2, logs=1)


# ------------------------------------------------------------------------------------ stats


def test_trace_stats_json_exact(store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_plugin_host", _no_host)
    conn = sqlite3.connect(store.db)
    conn.execute("INSERT INTO drops(reason, count) VALUES ('ring_full', 3), ('rejected:unregistered_event', 2)")
    conn.commit()
    metric_points, newest = conn.execute("SELECT count(*), max(ts_ns) FROM metric_points").fetchone()
    conn.close()
    code, out, err = run(capsys, "trace", "stats", "--json", "--home", str(store.home))
    assert (code, err) == (0, "")
    db_bytes = store.db.stat().st_size
    wal = store.db.with_name("ats.db-wal")
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    assert json.loads(out) == {
        "store": str(store.db), "bytes": db_bytes + wal_bytes, "db_bytes": db_bytes, "wal_bytes": wal_bytes,
        "schema_version": 2, "traces": 3, "spans": 8, "logs": 2, "metric_points": metric_points, "rewards": 0,
        "spans_by_family": {"driver": 2, "task": 2, "agent": 1, "cache": 1, "kernel": 1, "swarm": 1},
        "logs_by_family": {"policy": 1, "task": 1},
        "drops": {"ring_full": 3}, "rejections": {"unregistered_event": 2},
        "oldest": iso(store.c0), "newest": iso(newest),
    }
    code, out, _ = run(capsys, "trace", "stats", "--home", str(store.home))
    assert code == 0
    lines = out.splitlines()
    assert lines[2] == f"records       3 traces, 8 spans, 2 logs, {metric_points} metric points, 0 rewards"
    assert lines[5:] == ["spans         driver 2, task 2, agent 1, cache 1, kernel 1, swarm 1",
                         "logs          policy 1, task 1", "drops         ring_full 3",
                         "rejections    unregistered_event 2"]


def _no_host() -> Any:
    raise ImportError("No module named 'ats.plugins'")


# ------------------------------------------------------------------------------------ store errors


def test_missing_store_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "none"
    expected = (f"ats: no ATS store at {home / 'ats.db'} (set ATS_HOME or pass --home DIR; a program run "
                "under ats-run creates it)\n")
    for argv in (["trace", "list"], ["trace", "show", "ab"], ["trace", "stats", "--json"],
                 ["trace", "prune", "--older-than", "3"], ["trace", "export", "ab", "--format", "chrome", "-o", "x"]):
        assert run(capsys, *argv, "--home", str(home)) == (1, "", expected)
    assert not home.exists()


def test_missing_store_subprocess_uses_ats_home(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    env.update(ATS_HOME=str(tmp_path / "h"), PYTHONPATH=str(Path(cli.__file__).parent.parent))
    r = subprocess.run([sys.executable, "-m", "ats.cli", "trace", "list"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, check=False)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (f"ats: no ATS store at {tmp_path / 'h' / 'ats.db'} (set ATS_HOME or pass --home DIR; "
                        "a program run under ats-run creates it)\n")


def test_default_home_is_dot_ats(store: Store, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(store.home.parent)
    store.home.rename(store.home.parent / ".ats")
    code, out, _ = run(capsys, "trace", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    monkeypatch.setenv("ATS_HOME", str(store.home.parent / ".ats"))
    monkeypatch.chdir(store.home.parent.parent)
    code, out, _ = run(capsys, "trace", "list", "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_not_a_store_and_newer_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str], store: Store) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "ats.db").write_bytes(b"not sqlite at all" * 100)
    code, _, err = run(capsys, "trace", "list", "--home", str(junk))
    assert code == 1 and err.startswith(f"ats: cannot open the store {junk / 'ats.db'}: ")
    conn = sqlite3.connect(store.db)
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    assert run(capsys, "trace", "list", "--home", str(store.home)) == (1, "", (
        f"ats: the store {store.db} has schema version 7; this ats reads version 2 (run the program once "
        "with this ATS to upgrade it)\n"))


def test_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["trace"]) == 2
    assert main(["config"]) == 2
    assert main(["--help"]) == 0
    out, _ = capsys.readouterr()
    assert "trace" in out and "doctor" in out


# ------------------------------------------------------------------------------------ tree order


def test_tree_order_orphans_and_cycles() -> None:
    def span(i: int, parent: int | None, start: int) -> Any:
        return cli._Span(i, parent, f"s{i}", "", start, start + 1, "ok", "{}", "", "", "", "", None, None)

    spans = [span(2, 1, 5), span(1, None, 0), span(3, 99, 1), span(4, 5, 2), span(5, 4, 3), span(6, 6, 4)]
    ordered = cli._tree_order(spans)
    assert [(s.name, s.depth) for s in ordered] == [
        ("s1", 0), ("s2", 1),  # s2 under s1
        ("s3", 0),  # parent 99 is not in the trace
        ("s6", 0),  # its own parent
        ("s4", 0), ("s5", 1),  # a 4 <-> 5 cycle still shows every span once
    ]


def test_waterfall_bounds() -> None:
    g = cli._UNICODE
    assert cli._waterfall(0, 100, 0, 100, g, cols=10) == "|██████████|"
    assert cli._waterfall(99, 100, 0, 100, g, cols=10) == "|         █|"
    assert cli._waterfall(0, 0, 0, 100, g, cols=10) == "|█         |"
    assert cli._waterfall(50, 51, 0, 100, g, cols=10) == "|     █    |"


# ------------------------------------------------------------------------------------ validate


def test_validate_command(store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_plugin_host", _no_host)
    files = sorted((store.home / "jsonl").glob("ats-*.jsonl"))
    assert len(files) == 3  # one per UTC day of the three traces
    jsonl = files[-1]
    # The fixture spans all belong to built-in families: the sink's own output is valid.
    code, out, err = run(capsys, "validate", str(store.home / "jsonl"))
    assert (code, err) == (0, "")
    expected = []
    for f in files:
        kinds = validate_file(f).kinds
        listed = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        expected.append(f"{f}: {sum(kinds.values())} lines ({listed}): ok")
    assert out.splitlines() == expected
    assert sum(validate_file(f).kinds["span"] for f in files) == 8
    bad = tmp_path / "bad.jsonl"
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    span = json.loads(next(line for line in lines if '"kind":"span"' in line))
    bad.write_text("\n".join([
        lines[0],
        json.dumps({**span, "evt": "app.main.ok", "status": "ok"}),
        "{not json",
    ]) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(bad))
    assert code == 1
    assert out.splitlines() == [
        f"{bad}:2: $.evt: event 'app.main' is not registered (no event family owns it)",
        f"{bad}:3: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        f"{bad}:3 lines (2 span): 2 errors".replace(":3 lines", ": 3 lines"),
    ]
    code, out, _ = run(capsys, "validate", str(bad), "--allow-unregistered")
    assert code == 1 and f"{bad}: unregistered events: app.main" in out.splitlines()
    assert run(capsys, "validate", str(tmp_path / "nope.jsonl")) == (
        1, "", f"ats: no such file: {tmp_path / 'nope.jsonl'}\n")


# ------------------------------------------------------------------------------------ config show


def test_config_show(store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATS_SAMPLING_RATIO", "0.25")
    rows = load_config().as_rows()
    code, out, err = run(capsys, "config", "show", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"key": k, "value": v, "source": s} for k, v, s in rows]
    assert {"key": "sampling.ratio", "value": "0.25", "source": "env ATS_SAMPLING_RATIO"} in json.loads(out)
    code, out, _ = run(capsys, "config", "show")
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "SOURCE"]
    assert len(lines) == len(rows) + 1
    assert any(line.split() == ["sampling.ratio", "0.25", "env", "ATS_SAMPLING_RATIO"] for line in lines)
    monkeypatch.setenv("ATS_SAMPLING_RATIO", "2")
    code, out, err = run(capsys, "config", "show")
    assert (code, out) == (1, "")
    assert err.startswith("ats: ") and "sampling.ratio" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------ plugins, doctor


FAKE_ROWS: list[dict[str, str | None]] = [
    {"name": "sqlite3", "distribution": "ats-sqlite3", "version": "0.1.0", "status": "active", "reason": None},
    {"name": "broken", "distribution": "ats-broken", "version": "1.0", "status": "skipped",
     "reason": "import failed: ImportError: boom"},
]


def test_plugins_table_and_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_plugin_rows", lambda: FAKE_ROWS)
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    assert out.splitlines() == [
        "NAME     DISTRIBUTION  VERSION  STATUS   REASON",
        "sqlite3  ats-sqlite3   0.1.0    active",
        "broken   ats-broken    1.0      skipped  import failed: ImportError: boom",
    ]
    code, out, _ = run(capsys, "plugins", "--json")
    assert (code, json.loads(out)) == (0, FAKE_ROWS)
    monkeypatch.setattr(cli, "_plugin_rows", lambda: [])
    assert run(capsys, "plugins") == (0, "no plugins installed (entry-point group 'ats')\n", "")


def test_plugins_without_host(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_plugin_host", _no_host)
    assert run(capsys, "plugins") == (1, "", "ats: the plugin host is not available: No module named 'ats.plugins'\n")


def test_plugin_rows_with_the_real_host() -> None:
    rows = cli._plugin_rows()
    assert all(set(r) == {"name", "distribution", "version", "status", "reason"} for r in rows)
    # The first-party sqlite3 plugin is installed with the package (ci/install.sh).
    assert any((r["name"], r["distribution"], r["status"]) == ("sqlite3", "ats-sqlite3", "active") for r in rows)


def test_doctor_all_good(store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_plugin_rows", lambda: FAKE_ROWS[:1])
    monkeypatch.setattr(cli, "_plugin_host", _no_host)
    code, out, err = run(capsys, "doctor", "--deep", "--home", str(store.home))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:6] == [
        f"✓ native module    ats._native {_native.__version__} (_native.abi3.so)",
        "✓ configuration    valid (defaults and environment)",
        f"✓ store directory  {store.home} is writable",
        f"✓ store schema     {store.db}: schema version 2",
        "✓ plugins          1 active, 0 skipped",
        "✓ event families   23 event families (0 from plugins)",
    ]
    assert lines[6].startswith("✓ native pipeline  recorded a span and read it back from a temporary store in ")
    assert len(lines) == 7


def test_doctor_failures(store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "_plugin_rows", lambda: FAKE_ROWS)
    monkeypatch.setattr(cli, "_plugin_host", _no_host)
    monkeypatch.setenv("ATS_SAMPLING_RATIO", "7")
    conn = sqlite3.connect(store.db)
    conn.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    code, out, _ = run(capsys, "doctor", "--home", str(store.home))
    assert code == 1
    lines = out.splitlines()
    assert lines[1].startswith("✗ configuration    ") and "sampling.ratio" in lines[1]
    assert lines[3] == f"✗ store schema     {store.db}: schema version 9 is newer than this ATS (2)"
    assert lines[4] == "✗ plugins          broken: import failed: ImportError: boom"
    # a store directory that does not exist yet is fine when it can be created
    code, out, _ = run(capsys, "doctor", "--home", str(tmp_path / "new" / "home"))
    assert f"✓ store directory  {tmp_path / 'new' / 'home'} does not exist yet; {tmp_path} is writable so it can be created" in out
    assert f"✓ store schema     no store yet at {tmp_path / 'new' / 'home' / 'ats.db'} (created on the first run)" in out


def test_where_ats_writes_the_store_in_process_the_cli_reads_it_from_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python's sqlite3 is a second SQLite copy: opening the live store with it in the writer's
    process can truncate the writer's mapped -shm (SIGBUS). The command runs in a child instead."""
    import sqlite3

    import ats

    home = tmp_path / ".ats"
    # Without ATS's own sqlite3 plugin, so sqlite3.connect below is the library's and the
    # monkeypatch restores exactly that.
    assert ats.init(**{"home": str(home), "plugins.disabled": ["ats-sqlite3"]}) is not None
    try:
        with ats.span("kernel.exec", where="in-process"):
            pass
        assert ats.flush(5.0)

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("the live store opened with a second SQLite copy in-process")

        monkeypatch.setattr(sqlite3, "connect", refuse)
        code = main(["--home", str(home), "trace", "list"])
        out, err = capsys.readouterr()
        assert (code, err) == (0, "")
        assert "kernel.exec" in out
    finally:
        ats.shutdown(5.0)
