"""A sqlite3 point query: raw, under ATS, under OpenTelemetry's sqlite3 instrumentation
and under ddtrace — in the same run, each on a connection made after its patching.

Run: bash ci/bench.sh   (installs the peers from benches/requirements.txt first)
Overhead per query = variant median - raw median.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

QUERY = "SELECT name FROM users WHERE id = ?"


def _make_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"user{i}") for i in range(1000)])
    db.commit()
    db.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "bench.db"
    _make_db(path)
    return path


def _point_query(conn: sqlite3.Connection) -> Callable[[], Any]:
    # Through a cursor: OpenTelemetry's dbapi instrumentation does not see Connection.execute.
    cur = conn.cursor()

    def run() -> Any:
        cur.execute(QUERY, (42,))
        return cur.fetchone()

    return run


def test_raw(benchmark: Any, db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    assert benchmark(_point_query(conn)) == ("user42",)


@pytest.fixture
def ats_runtime(tmp_path: Path) -> Iterator[None]:
    import ats

    ats.init(**{"home": str(tmp_path / ".ats"), "ring.bytes": "64MiB"})
    yield
    assert ats.shutdown(30.0)


def test_ats(benchmark: Any, db_path: Path, ats_runtime: None) -> None:
    conn = sqlite3.connect(db_path)
    assert type(conn) is not sqlite3.Connection, "ATS's sqlite3 instrumentation is not active"
    assert benchmark(_point_query(conn)) == ("user42",)
    import ats

    assert ats._runtime.current() is not None
    dropped = ats._runtime.current().pipeline.stats()["dropped"]  # type: ignore[union-attr]
    assert dropped["ring_full"] == 0


def test_opentelemetry(benchmark: Any, db_path: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    exported = [0]

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            exported[0] += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 16))
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        conn = sqlite3.connect(db_path)
        assert benchmark(_point_query(conn)) == ("user42",)
        provider.force_flush()
        assert exported[0] > 0, "OpenTelemetry's sqlite3 instrumentation produced no span"
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    del trace, ReadableSpan


def test_ddtrace(benchmark: Any, db_path: Path) -> None:
    import ddtrace
    from ddtrace import patch

    patch(sqlite3=True)
    conn = sqlite3.connect(db_path)
    assert type(conn).__name__ != "Connection", "ddtrace did not wrap the connection"
    assert benchmark(_point_query(conn)) == ("user42",)
    del ddtrace
