"""ats.otel: an OpenTelemetry SDK app (with OpenTelemetry's own sqlite3 instrumentation) sending its
spans through ATS, and the ``logging`` handler."""

from __future__ import annotations

import json
import logging
import sqlite3

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import ats
from ats import _runtime
from ats.cli import main as cli_main
from ats.otel import ATSLogHandler, ATSSpanProcessor, claim_scope, release_scope, severity_number
from ats.sql import normalize

import store_reader


@pytest.fixture
def home(ats_home_no_sqlite3: Path) -> Path:
    # ATS's own sqlite3 plugin is off: the statements must come from OpenTelemetry's instrumentation.
    return ats_home_no_sqlite3


@pytest.fixture
def otel() -> Iterator[tuple[TracerProvider, InMemorySpanExporter, ATSSpanProcessor]]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    processor = ATSSpanProcessor()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(processor)
    yield provider, exporter, processor
    provider.shutdown()


def _rows(home: Path, view: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    db = store_reader.connect(home / "ats.db")
    try:
        rows = db.execute(f"SELECT {', '.join(columns)} FROM {view}").fetchall()
    finally:
        db.close()
    return [{**dict(zip(columns, r)), "attributes": json.loads(r[-1])} for r in rows]


def stored_spans(home: Path) -> list[dict[str, Any]]:
    return sorted(_rows(home, "spans_v", ("trace_id", "span_id", "parent_id", "name", "component", "status",
                                          "dialect", "air_id", "start_ns", "attributes")),
                  key=lambda r: r["start_ns"])


def stored_logs(home: Path) -> list[dict[str, Any]]:
    return sorted(_rows(home, "logs_v", ("trace_id", "span_id", "event", "component", "severity", "body", "ts_ns",
                                         "attributes")), key=lambda r: r["ts_ns"])


def test_otel_sqlite3_instrumentation_through_ats(home: Path, tmp_path: Path, otel: Any) -> None:
    provider, exporter, processor = otel
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        tracer = provider.get_tracer("shop")
        with tracer.start_as_current_span("checkout") as root:
            root.set_attribute("customer.note", "call bob@example.com")
            conn = sqlite3.connect(str(tmp_path / "shop.db"))
            cur = conn.cursor()
            cur.execute("CREATE TABLE users (id INTEGER, email TEXT)")
            cur.execute("INSERT INTO users VALUES (42, 'alice@example.com')")
            cur.execute("SELECT email FROM users WHERE id = 42 AND email = 'alice@example.com'")
            with pytest.raises(sqlite3.OperationalError):
                cur.execute("SELECT * FROM missing WHERE secret = 'hunter2'")
            conn.close()
    finally:
        instrumentor.uninstrument()
    assert ats.flush(5.0)

    otel_spans = exporter.get_finished_spans()
    assert len(otel_spans) == 5
    stored = stored_spans(home)
    assert [s["name"] for s in stored] == ["checkout", "CREATE", "INSERT", "SELECT", "SELECT"]
    root_ctx = root.get_span_context()
    trace_hex = f"{root_ctx.trace_id:032x}"
    # Same ids as OpenTelemetry's, one trace, the statements children of the root.
    assert {s["trace_id"] for s in stored} == {trace_hex}
    assert sorted((s["span_id"], s["parent_id"]) for s in stored) == sorted(
        (f"{o.context.span_id:016x}", f"{o.parent.span_id:016x}" if o.parent else None) for o in otel_spans)
    by_id = {s["span_id"]: s for s in stored}
    root_row = by_id[f"{root_ctx.span_id:016x}"]
    assert (root_row["name"], root_row["component"], root_row["status"]) == ("checkout", "shop", "unset")
    assert root_row["attributes"] == {"customer.note": "call [EMAIL]"}

    statements = [
        ("CREATE TABLE users (id INTEGER, email TEXT)", "unset"),
        ("INSERT INTO users VALUES (42, 'alice@example.com')", "unset"),
        ("SELECT email FROM users WHERE id = 42 AND email = 'alice@example.com'", "unset"),
        ("SELECT * FROM missing WHERE secret = 'hunter2'", "error"),
    ]
    db_rows = [s for s in stored if s["parent_id"] is not None]
    assert len(db_rows) == 4
    for row, (sql, status) in zip(db_rows, statements):
        n = normalize(sql, "sqlite")
        a = row["attributes"]
        assert row["component"] == "opentelemetry.instrumentation.sqlite3"
        assert (row["status"], row["dialect"], row["air_id"]) == (status, "sqlite", n.air_id)
        assert a["db.statement"] == a["db.query.text"] == n.text
        assert a["db.sqlx.air_id"] == n.air_id
        assert a["db.system"] == "sqlite"
        assert a["db.operation.name"] == n.operation
        assert "42" not in n.text and "alice" not in json.dumps(a) and "hunter2" not in json.dumps(a)
    assert db_rows[2]["attributes"]["db.statement"] == "SELECT email FROM users WHERE id = ? AND email = ?"
    failed = db_rows[3]["attributes"]
    assert (failed["exception.type"], failed["exception.message"], failed["error.type"]) == (
        "sqlite3.OperationalError", "no such table: missing", "OperationalError")
    assert "exception.stacktrace" not in failed
    assert (processor.recorded, processor.dropped, processor.skipped, processor.errors) == (5, 0, 0, 0)


def test_trace_show_json_has_the_sanitised_statements(home: Path, tmp_path: Path, otel: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    provider, _exporter, _processor = otel
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("t").start_as_current_span("job") as root:
            conn = sqlite3.connect(":memory:")
            conn.cursor().execute("SELECT 'top-secret-literal', 7")
            conn.close()
    finally:
        instrumentor.uninstrument()
    assert ats.flush(5.0)
    trace_hex = f"{root.get_span_context().trace_id:032x}"
    assert cli_main(["--home", str(home), "trace", "show", trace_hex, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["trace_id"] == trace_hex
    query = next(s for s in shown["spans"] if s["name"] != "job")
    assert query["attributes"]["db.statement"] == "SELECT ?, ?"
    assert query["attributes"]["db.sqlx.air_id"] == normalize("SELECT 'x', 1", "sqlite").air_id
    assert query["parent_id"] == f"{root.get_span_context().span_id:016x}"


def test_name_holding_the_statement_is_replaced_and_status_ok_mapped(home: Path, otel: Any) -> None:
    provider, _exporter, _processor = otel
    tracer = provider.get_tracer("custom")
    sql = "UPDATE accounts SET balance = 100 WHERE owner = 'eve'"
    with tracer.start_as_current_span(sql, attributes={"db.system.name": "postgresql", "db.query.text": sql,
                                                       "tags": ("a", "b"), "n": 3}) as span:
        span.set_status(Status(StatusCode.OK))
    assert ats.flush(5.0)
    (row,) = stored_spans(home)
    n = normalize(sql, "postgresql")
    assert (row["name"], row["status"], row["dialect"]) == (n.summary, "ok", "postgresql")
    assert row["attributes"] == {
        "db.system.name": "postgresql", "db.query.text": n.text, "db.statement": n.text, "db.sqlx.air_id": n.air_id,
        "db.operation.name": n.operation, "db.collection.name": "accounts", "db.query.summary": n.summary,
        "tags": "a,b", "n": 3,
    }


def test_a_claimed_scope_is_left_to_its_plugin(home: Path, otel: Any) -> None:
    provider, exporter, processor = otel
    claim_scope("lib-with-its-own-bridge")
    try:
        with provider.get_tracer("lib-with-its-own-bridge").start_as_current_span("claimed"):
            pass
        with provider.get_tracer("other").start_as_current_span("kept"):
            pass
    finally:
        release_scope("lib-with-its-own-bridge")
    with provider.get_tracer("lib-with-its-own-bridge").start_as_current_span("released"):
        pass
    assert ats.flush(5.0)
    assert [s["name"] for s in stored_spans(home)] == ["kept", "released"]
    assert [s.name for s in exporter.get_finished_spans()] == ["claimed", "kept", "released"]
    assert (processor.recorded, processor.skipped, processor.errors) == (2, 0, 0)


def test_sampling_applies_to_otel_spans(tmp_path: Path, otel: Any) -> None:
    provider, exporter, processor = otel
    assert ats.init(**{"home": str(tmp_path / ".ats"), "sampling.ratio": 0.0, "sampling.parent_based": False,
                       "metrics.interval_ms": 3_600_000}) is not None
    try:
        for _ in range(5):
            with provider.get_tracer("t").start_as_current_span("work"):
                pass
        assert ats.flush(5.0)
        assert stored_spans(tmp_path / ".ats") == []
        assert (processor.recorded, processor.dropped) == (0, 5)
        assert len(exporter.get_finished_spans()) == 5  # OpenTelemetry's own pipeline is untouched
    finally:
        ats.shutdown(5.0)


def test_not_running_is_a_counted_no_op(otel: Any) -> None:
    provider, exporter, processor = otel
    assert _runtime.current() is None
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    assert (processor.recorded, processor.skipped, processor.errors) == (0, 1, 0)
    assert len(exporter.get_finished_spans()) == 1
    assert processor.force_flush(100) is True


def test_errors_are_counted_never_raised(home: Path, otel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    provider, _exporter, processor = otel
    rt = _runtime.current()
    assert rt is not None

    class Broken:
        def record_span(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("boom")

    before = _runtime.ERRORS.counts.get("otel.on_end", 0)
    monkeypatch.setattr(rt, "pipeline", Broken())
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    monkeypatch.undo()
    assert processor.errors == 1
    assert _runtime.ERRORS.counts["otel.on_end"] == before + 1


def test_start_true_initialises_ats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATS_HOME", str(tmp_path / ".ats"))
    monkeypatch.setenv("ATS_DISABLED_PLUGINS", "ats-sqlite3")
    assert _runtime.current() is None
    provider = TracerProvider()
    processor = ATSSpanProcessor(start=True)
    provider.add_span_processor(processor)
    try:
        assert _runtime.current() is not None
        with provider.get_tracer("t").start_as_current_span("work"):
            pass
        assert ats.flush(5.0)
        assert [s["name"] for s in stored_spans(tmp_path / ".ats")] == ["work"]
    finally:
        ats.shutdown(5.0)


# --- logging ---------------------------------------------------------------------------------


@pytest.mark.parametrize("levelno, number", [
    (0, 1), (5, 1), (10, 5), (11, 6), (12, 7), (13, 8), (19, 8), (20, 9), (21, 10), (25, 12), (30, 13),
    (33, 16), (40, 17), (42, 19), (50, 21), (51, 22), (52, 23), (53, 24), (60, 24),
])
def test_severity_mapping(levelno: int, number: int) -> None:
    assert severity_number(levelno) == number


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, ATSLogHandler]]:
    log = logging.getLogger("shop.orders")
    handler = ATSLogHandler()
    log.addHandler(handler)
    log.setLevel(1)
    log.propagate = False
    yield log, handler
    log.removeHandler(handler)


def test_log_handler_records_exactly(home: Path, logger: Any, otel: Any) -> None:
    log, handler = logger
    provider = otel[0]
    log.info("order %s placed by %s", 17, "bob@example.com")
    with ats.span("app.checkout") as s:
        log.warning("slow payment")
    with provider.get_tracer("t").start_as_current_span("otel-work") as o:
        try:
            raise ValueError("card 4111 1111 1111 1111 declined")
        except ValueError:
            log.exception("payment failed")
    log.log(5, "very fine")
    assert ats.flush(5.0)
    logs = stored_logs(home)
    assert [(r["event"], r["component"], r["severity"], r["body"]) for r in logs] == [
        ("log.record", "shop.orders", 9, "order 17 placed by [EMAIL]"),
        ("log.record", "shop.orders", 13, "slow payment"),
        ("log.record", "shop.orders", 17, "payment failed"),
        ("log.record", "shop.orders", 1, "very fine"),
    ]
    assert (logs[0]["trace_id"], logs[0]["span_id"]) == (None, None)
    assert s.context is not None
    assert (logs[1]["trace_id"], logs[1]["span_id"]) == (s.context.trace_id, f"{s.context.span_id:016x}")
    octx = o.get_span_context()
    assert (logs[2]["trace_id"], logs[2]["span_id"]) == (f"{octx.trace_id:032x}", f"{octx.span_id:016x}")
    attrs = logs[2]["attributes"]
    assert attrs["exception.type"] == "builtins.ValueError"
    assert attrs["exception.message"] == "card [CREDIT_CARD] declined"
    assert attrs["code.function.name"] == "test_log_handler_records_exactly"
    assert attrs["code.file.path"].endswith("test_otel.py")
    assert isinstance(attrs["code.line.number"], int)
    assert attrs["thread.name"] == "MainThread"
    assert set(logs[0]["attributes"]) == {"code.file.path", "code.function.name", "code.line.number", "thread.name"}
    assert (handler.skipped, handler.failures) == (0, 0)


def test_log_handler_without_ats_is_a_counted_no_op(logger: Any) -> None:
    log, handler = logger
    assert _runtime.current() is None
    log.error("nobody listens")
    assert (handler.skipped, handler.failures) == (1, 0)


def test_log_handler_never_raises(home: Path, logger: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    log, handler = logger
    rt = _runtime.current()
    assert rt is not None

    class Broken:
        def emit_log(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("boom")

    monkeypatch.setattr(rt, "pipeline", Broken())
    log.error("still fine")
    monkeypatch.undo()
    assert handler.failures == 1


def test_registry_has_the_otel_and_log_families(home: Path) -> None:
    rt = _runtime.current()
    assert rt is not None and rt.registry is not None
    assert "otel" in rt.registry and "log" in rt.registry
    assert rt.registry.accept("log.record")


def test_on_start_does_nothing() -> None:
    # The processor reads spans only when they end: on_start does nothing and returns None.
    processor = ATSSpanProcessor()
    span = TracerProvider().get_tracer("t").start_span("x")
    assert processor.on_start(span) is None  # type: ignore[func-returns-value]
    span.end()
    assert trace.get_current_span() is trace.INVALID_SPAN
