"""Python → native record call (envelope + 6 attributes), side by side with the
OpenTelemetry SDK recording the same span through a BatchSpanProcessor.

Run: .venv/bin/python -m pytest benches/test_bench_record.py --benchmark-only
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ats import _native

TRACE = "4a1b0000000000000000000000009f3a"
ATTRS = {
    "db.system": "sqlite",
    "db.statement": "SELECT * FROM users WHERE id = ?",
    "db.operation": "SELECT",
    "db.collection.name": "users",
    "rows": 42,
    "cached": False,
}


class DiscardExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[_native.Pipeline]:
    p = _native.Pipeline(store_path=str(tmp_path / "ats.db"), ring_bytes=64 << 20)
    yield p
    p.shutdown(10.0)


def test_ats_record_span(benchmark: Any, pipeline: _native.Pipeline) -> None:
    ids = itertools.count(1)

    def record() -> None:
        pipeline.record_span("driver.query", "bench", TRACE, next(ids), 7, 1_000, 2_000, 1, ATTRS,
                             dialect="sqlite", air_id="air:Q-00000000000000ff")

    benchmark(record)
    assert pipeline.stats()["dropped"]["ring_full"] == 0


def test_otel_sdk_span(benchmark: Any) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter(), max_queue_size=1 << 16))
    tracer = provider.get_tracer("bench")

    def record() -> None:
        span = tracer.start_span("driver.query", attributes=ATTRS)
        span.end()

    benchmark(record)
    provider.shutdown()


def test_ats_record_query(benchmark: Any, pipeline: _native.Pipeline) -> None:
    sql = "SELECT name FROM users WHERE id = ?"

    def record() -> None:
        pipeline.record_query(1, "sqlite", sql, 1_000, 2_000, None, TRACE, 7, True, "ats-sqlite3", "", 0, "app.db")

    benchmark(record)
