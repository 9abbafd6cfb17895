"""OpenTelemetry in: spans of an OpenTelemetry SDK ``TracerProvider`` and ``logging`` records, through ATS.

Needs ``opentelemetry-sdk`` (``pip install ats-telemetry[otel]``); ``import ats`` never imports this module.

:class:`ATSSpanProcessor` is added to an existing provider
(``provider.add_span_processor(ATSSpanProcessor())``). Each ended span becomes one ATS span record
(one native ``Pipeline.record_span`` call) and takes ATS's path: sampling, the ring buffer, the
flusher's scrubber, and every configured sink (store, JSONL, OTLP). For each span:

* ``db.statement`` / ``db.query.text`` are replaced by the normalised statement (every literal a
  ``?``), both keys are set, with ``db.sqlx.air_id`` and, when absent, ``db.operation.name``,
  ``db.collection.name`` and ``db.query.summary``; the envelope carries the ``air_id`` and the
  dialect (from ``db.system.name`` / ``db.system``);
* a span name that contains the raw statement is replaced by the statement's summary; the name
  is scrubbed like free text;
* every other string attribute value is scrubbed of PII and secrets by the flusher (the same
  redaction stage the ATS plugins' records go through); sequences are recorded as their text;
* OpenTelemetry's trace id, span id and parent span id are kept, so the ATS store and the
  OpenTelemetry exporters show the same trace; the parent's sampled and remote flags feed ATS's
  parent-based sampler;
* status maps one to one (unset, ok, error); the first ``exception`` event becomes
  ``exception.type`` / ``exception.message`` (and ``error.type`` when the status is error); the
  stack trace and other events are not recorded;
* the instrumentation scope name is the record's component.

ATS must be running (``ats.init()`` or ``ats-run``) for spans to be recorded: the processor does
not start ATS itself, because starting ATS loads its plugins, which instrument libraries — a
side effect a span processor must not have. Spans ending while ATS is not running are counted
(:attr:`ATSSpanProcessor.skipped`) and otherwise ignored; ``ATSSpanProcessor(start=True)`` calls
``ats.init()`` once when the processor is created, for programs that want that.

Nothing here raises into the program: a failure is counted (:attr:`ATSSpanProcessor.errors`
and ATS's internal error counter) and the span is dropped. ``on_start`` does nothing.

:class:`ATSLogHandler` is a ``logging.Handler`` whose records become ATS log records (event
``log.record``, component = the logger name) with the OpenTelemetry severity number, the current
span's trace and span ids (ATS's current span, else OpenTelemetry's), the message as the body
(scrubbed by the flusher), ``exception.type`` / ``exception.message`` from ``exc_info``, and
``code.file.path`` / ``code.function.name`` / ``code.line.number`` / ``thread.name``.

A plugin that records some scope's spans itself, with more than this processor knows, claims the
scope (:func:`claim_scope`; ``ats-mcp`` claims ``mcp-python-sdk`` on ``mcp`` 2), and the processor
leaves those spans to it, so no span is recorded twice.

Both belong to event families the runtime registers: ``otel`` (spans from OpenTelemetry
instrumentations) and ``log`` (records from ``logging``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import SpanProcessor

from ats import _runtime
from ats.context import current_span

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan, Span

__all__ = ["ATSLogHandler", "ATSSpanProcessor", "LOG_EVENT", "claim_scope", "release_scope", "severity_number"]

#: The event name of log records made by :class:`ATSLogHandler`.
LOG_EVENT = "log.record"

_STATEMENT_KEYS = ("db.query.text", "db.statement")
_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
_EXCEPTION_EVENT = "exception"
_MAX_MESSAGE = 4096


#: Instrumentation scopes whose spans an ATS plugin records itself (with more than this processor
#: knows); :class:`ATSSpanProcessor` leaves them alone so no span is recorded twice.
_claimed_scopes: set[str] = set()


def claim_scope(name: str) -> None:
    """From now on spans of the instrumentation scope ``name`` are recorded by a plugin, not by
    :class:`ATSSpanProcessor` (``ats-mcp`` claims ``mcp-python-sdk`` on ``mcp`` 2)."""
    _claimed_scopes.add(name)


def release_scope(name: str) -> None:
    """Undoes :func:`claim_scope`."""
    _claimed_scopes.discard(name)


class _Counter:
    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


class ATSSpanProcessor(SpanProcessor):
    """An OpenTelemetry SDK span processor that records every ended span through ATS.

    :param start: call ``ats.init()`` (files and environment) now if ATS is not running yet.
    """

    def __init__(self, start: bool = False) -> None:
        self._recorded = _Counter()
        self._dropped = _Counter()
        self._skipped = _Counter()
        self._errors = _Counter()
        if start:
            try:
                _runtime.init()
            except Exception as exc:
                self._errors.add()
                _runtime.count_error("otel.init", exc)

    @property
    def recorded(self) -> int:
        """Spans handed to the ATS pipeline and accepted (kept by the sampler, room in the ring)."""
        return self._recorded.value

    @property
    def dropped(self) -> int:
        """Spans the ATS pipeline did not keep (sampled out or ring full; ATS counts why)."""
        return self._dropped.value

    @property
    def skipped(self) -> int:
        """Spans that ended while ATS was not running."""
        return self._skipped.value

    @property
    def errors(self) -> int:
        """Spans lost to an error inside ATS (also in ATS's internal error counter)."""
        return self._errors.value

    # --- the SpanProcessor interface ----------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do: the span is read once, when it ends."""

    def on_end(self, span: ReadableSpan) -> None:
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name in _claimed_scopes:
                return
            rt = _runtime.current()
            if rt is None:
                self._skipped.add()
                return
            if _record_span(rt.pipeline, span):
                self._recorded.add()
            else:
                self._dropped.add()
        except Exception as exc:
            self._errors.add()
            _runtime.count_error("otel.on_end", exc)

    def shutdown(self) -> None:
        """ATS's own lifecycle (``ats.shutdown()``, exit) drains and closes the pipeline."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return _runtime.flush(timeout_millis / 1000.0)
        except Exception as exc:
            self._errors.add()
            _runtime.count_error("otel.force_flush", exc)
            return False


def _record_span(pipeline: Any, span: ReadableSpan) -> bool:
    ctx = span.context
    if ctx is None:
        return False
    attributes = _attributes(span.attributes)
    name = span.name
    dialect = ""
    air_id = None
    sql = next((attributes[k] for k in _STATEMENT_KEYS if isinstance(attributes.get(k), str)), None)
    if isinstance(sql, str):
        norm = _normalize(sql, attributes)
        dialect, air_id = norm.dialect, norm.air_id
        attributes["db.query.text"] = attributes["db.statement"] = norm.text
        attributes["db.sqlx.air_id"] = norm.air_id
        if norm.operation:
            attributes.setdefault("db.operation.name", norm.operation)
        if norm.tables:
            attributes.setdefault("db.collection.name", norm.tables[0])
        if norm.summary:
            attributes.setdefault("db.query.summary", norm.summary)
        stripped = sql.strip()
        if stripped and stripped in name:
            name = norm.summary or norm.operation or "db.query"
    status = int(span.status.status_code.value)  # UNSET 0, OK 1, ERROR 2: ATS's codes
    for event in span.events:
        if event.name == _EXCEPTION_EVENT:
            _exception_attributes(attributes, event.attributes, status == 2)
            break
    if status == 2 and "error.type" not in attributes and span.status.description:
        attributes["error.type"] = span.status.description.split(":", 1)[0][:256]
    parent = span.parent
    from ats.privacy import scrub

    recorded: bool = pipeline.record_span(
        scrub(name), span.instrumentation_scope.name if span.instrumentation_scope else "otel",
        f"{ctx.trace_id:032x}", ctx.span_id, parent.span_id if parent is not None else 0,
        span.start_time or 0, span.end_time or span.start_time or 0, status, attributes, dialect, air_id, None,
        bool(parent.trace_flags.sampled) if parent is not None else True,
        bool(parent.is_remote) if parent is not None else False,
    )
    return recorded


def _normalize(sql: str, attributes: Mapping[str, Any]) -> Any:
    from ats.sql import normalize

    system = attributes.get("db.system.name") or attributes.get("db.system")
    return normalize(sql, _DIALECTS.get(system) if isinstance(system, str) else None)


def _attributes(source: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy with values ATS records as they are (str, int, float, bool); others as text."""
    out: dict[str, Any] = {}
    if not source:
        return out
    for key, value in source.items():
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif isinstance(value, Sequence):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def _exception_attributes(out: dict[str, Any], event: Mapping[str, Any] | None, failed: bool) -> None:
    if not event:
        return
    exc_type = event.get("exception.type")
    if isinstance(exc_type, str):
        out["exception.type"] = exc_type
        if failed:
            out.setdefault("error.type", exc_type.rsplit(".", 1)[-1])
    message = event.get("exception.message")
    if isinstance(message, str):
        out["exception.message"] = message[:_MAX_MESSAGE]


# --- logging ------------------------------------------------------------------------------------


def severity_number(levelno: int) -> int:
    """The OpenTelemetry severity number of a ``logging`` level (logs data model, appendix B).

    DEBUG 10 -> 5 (DEBUG), INFO 20 -> 9, WARNING 30 -> 13, ERROR 40 -> 17, CRITICAL 50 -> 21; the
    levels between take the next three numbers of their range (11 -> DEBUG2, 12 -> DEBUG3,
    13..19 -> DEBUG4); below 10 is TRACE (1), above 53 is FATAL4 (24).
    """
    if levelno < 10:
        return 1
    if levelno >= 53:
        return 24
    return 5 + 4 * (levelno // 10 - 1) + min(levelno % 10, 3)


class ATSLogHandler(logging.Handler):
    """A ``logging`` handler that records each log record through ATS (``emit_log``).

    Records are dropped (and counted in :attr:`skipped`) while ATS is not running; nothing
    raises into the program (failures are counted in :attr:`failures` and in ATS's internal
    error counter, never passed to ``logging``'s ``handleError``).
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._skipped = _Counter()
        self._failures = _Counter()

    @property
    def skipped(self) -> int:
        return self._skipped.value

    @property
    def failures(self) -> int:
        return self._failures.value

    def emit(self, record: logging.LogRecord) -> None:
        try:
            rt = _runtime.current()
            if rt is None:
                self._skipped.add()
                return
            attributes: dict[str, Any] = {
                "code.file.path": record.pathname,
                "code.function.name": record.funcName,
                "code.line.number": record.lineno,
                "thread.name": record.threadName or "",
            }
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                attributes["exception.type"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
                attributes["exception.message"] = str(exc)[:_MAX_MESSAGE]
            ctx = current_span()
            rt.pipeline.emit_log(
                LOG_EVENT, record.name, severity_number(record.levelno), record.getMessage(),
                getattr(record, "created_ns", None) or int(record.created * 1e9),
                ctx.trace_id if ctx is not None else None, ctx.span_id if ctx is not None else 0, attributes,
            )
        except Exception as exc:
            self._failures.add()
            _runtime.count_error("otel.log_handler", exc)
