# Hand-written stub for the compiled module; checked by `python -m mypy.stubtest ats._native`.
import os
from collections.abc import Callable
from typing import Any, final

__version__: str
FINGERPRINT_VERSION: int

def native_panics() -> int: ...

# --- sql -------------------------------------------------------------------
@final
class Normalized:
    @property
    def text(self) -> str: ...
    @property
    def air_id(self) -> str: ...
    @property
    def operation(self) -> str: ...
    @property
    def tables(self) -> tuple[str, ...]: ...
    @property
    def summary(self) -> str: ...
    @property
    def dialect(self) -> str: ...

def normalize(sql: str, dialect: str | None = None) -> Normalized: ...
def plan_fingerprint(plan_json: str) -> str: ...
def statement_cache_stats() -> tuple[int, int, int, int, int]: ...

# --- privacy ---------------------------------------------------------------
@final
class Scrubber:
    def __new__(cls, extra_patterns: list[tuple[str, str, str]] = ...) -> Scrubber: ...
    def scrub(self, text: str) -> str: ...

def scrub(text: str) -> str: ...

# --- sampling --------------------------------------------------------------
@final
class TraceIdRatio:
    def __new__(cls, ratio: float) -> TraceIdRatio: ...
    def should_sample(self, trace_id: str) -> bool: ...

# --- metrics ---------------------------------------------------------------
@final
class Counter:
    def add(self, value: int = 1, labels: dict[str, Any] | None = None) -> None: ...

@final
class Gauge:
    def set(self, value: float, labels: dict[str, Any] | None = None) -> None: ...

@final
class Histogram:
    def record(self, value: float, labels: dict[str, Any] | None = None) -> None: ...
    def quantile(self, q: float, labels: dict[str, Any] | None = None) -> float | None: ...

@final
class Metrics:
    def __new__(cls) -> Metrics: ...
    def counter(self, name: str, unit: str) -> Counter: ...
    def gauge(self, name: str, unit: str) -> Gauge: ...
    def histogram(self, name: str, unit: str, bounds: list[float] | None = None) -> Histogram: ...
    def snapshot(self) -> list[dict[str, Any]]: ...

# --- record path -----------------------------------------------------------
# Attribute values: str, int, float or bool; anything else is recorded as str(value).

@final
class Pipeline:
    def __new__(
        cls,
        *,
        store_path: str | None = None,
        jsonl_dir: str | None = None,
        jsonl_max_file_bytes: int = ...,
        jsonl_max_total_bytes: int | None = None,
        ring_bytes: int = ...,
        flush_interval_ms: int = 200,
        batch_max_records: int = 4096,
        tenant: str = ...,
        workspace: str = ...,
        region: str = ...,
        sample_ratio: float = 1.0,
        parent_based: bool = True,
        sampling_rules: list[tuple[str, float, float]] = ...,
        rate_limit_per_second: float | None = None,
        rate_limit_burst: int = 1000,
        daily_cap: int | None = None,
        redact: bool = True,
        scrub_patterns: list[tuple[str, str, str]] = ...,
        tail_latency_ms: float | None = None,
        tail_base_ratio: float = 0.1,
        metrics: Metrics | None = None,
        metrics_interval_ms: int = 10000,
        retention_days: tuple[int, int, int, int] | None = None,
        otlp: dict[str, Any] | None = None,
        handoff_max_records: int = 65536,
    ) -> Pipeline: ...
    def record_span(
        self,
        name: str,
        component: str,
        trace_id: str,
        span_id: int,
        parent_span_id: int,
        start_ns: int,
        end_ns: int,
        status: int,
        attributes: dict[str, Any] | None = None,
        dialect: str = "",
        air_id: str | None = None,
        plan_hash: str | None = None,
        parent_sampled: bool = True,
        parent_remote: bool = False,
    ) -> bool: ...
    def emit_log(
        self,
        event: str,
        component: str,
        severity: int,
        body: str,
        ts_ns: int,
        trace_id: str | None = None,
        span_id: int = 0,
        attributes: dict[str, Any] | None = None,
        dialect: str = "",
        air_id: str | None = None,
        plan_hash: str | None = None,
    ) -> bool: ...
    def record_query(
        self,
        op: int,
        dialect: str,
        sql: str | None,
        start_ns: int,
        end_ns: int,
        error_type: str | None = None,
        trace_id: str | None = None,
        parent_span_id: int = 0,
        parent_sampled: bool = True,
        component: str = "",
        peer_name: str = "",
        peer_port: int = 0,
        db_namespace: str = "",
        rows: int = ...,
        status_code: str | None = None,
        slo_class: str | None = None,
    ) -> int: ...
    @property
    def metrics(self) -> Metrics: ...
    @staticmethod
    def new_span_id() -> int: ...
    @staticmethod
    def new_trace_id() -> str: ...
    def flush(self, timeout: float) -> bool: ...
    def shutdown(self, timeout: float) -> bool: ...
    def attach_drain(self) -> None: ...
    def drain(self, timeout: float) -> list[dict[str, Any]] | None: ...
    def stats(self) -> dict[str, Any]: ...

# The active pipeline for plugins' per-call recording (set by ats._runtime).
def activate(
    pipeline: Pipeline,
    span_var: Any,
    suppressed_var: Any,
    otel_probe: Callable[[], Any],
) -> None: ...
def deactivate() -> None: ...
def suppression_used() -> None: ...
def driver_call(
    op: int,
    dialect: str,
    sql: str | None,
    start_ns: int,
    error_type: str | None,
    component: str,
    db_namespace: str,
    peer_name: str = "",
    peer_port: int = 0,
    rows: int = ...,
    status_code: str | None = None,
) -> int: ...

# --- store -----------------------------------------------------------------
# Reads through the store writer's own SQLite: safe in a process whose pipeline has the store
# open (Python's sqlite3 links another SQLite copy; two copies on one WAL file break each
# other's locks). Read-only; `path` may be a `file:` URI.
def store_query(path: str | os.PathLike[str], sql: str,
                params: list[int | float | str | bytes | None] = ...) -> list[tuple[Any, ...]]: ...

@final
class CallTracer:
    enabled: bool
    def __new__(cls, func: Callable[..., Any], op: int, dialect: str, component: str, via_connection: bool,
                on_error: Callable[[BaseException], object]) -> CallTracer: ...
    def method(self) -> Callable[..., Any]: ...
