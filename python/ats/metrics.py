"""Application metrics, aggregated natively and exported with ATS's own.

``ats.metrics.counter("jobs_total").add(1, {"queue": "high"})`` works before and after
``ats.init()``: the registry exists for the life of the process.
"""

from __future__ import annotations

from ats._native import Counter, Gauge, Histogram
from ats._runtime import METRICS

__all__ = ["Counter", "Gauge", "Histogram", "counter", "gauge", "histogram", "snapshot"]


def counter(name: str, unit: str = "1") -> Counter:
    """A monotonic counter; names and units follow OpenTelemetry's syntax."""
    return METRICS.counter(name, unit)


def gauge(name: str, unit: str = "1") -> Gauge:
    return METRICS.gauge(name, unit)


def histogram(name: str, unit: str = "ms", bounds: list[float] | None = None) -> Histogram:
    """A log-linear histogram (p50/p95/p99 within 1 %). ``bounds``: the explicit bucket bounds
    exported (default: OpenTelemetry's millisecond bounds); fixed by the first call for a name."""
    return METRICS.histogram(name, unit, bounds)


def snapshot() -> list[dict[str, object]]:
    """Current cumulative points, as plain dicts."""
    return METRICS.snapshot()
