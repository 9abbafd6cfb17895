"""The manual API: ``span``, ``traced`` and ``emit``.

Every call is safe before ``ats.init()`` (it records nothing) and never raises into
the caller because of telemetry: a failure inside ATS is counted, the user's code runs
on unchanged, and exceptions from the user's code pass through untouched.
"""

from __future__ import annotations

import functools
import time

from ats import _runtime
from ats.context import SpanContext, attach, current_span, detach

# Not `typing.TYPE_CHECKING`: importing typing/inspect is a measurable part of `import ats`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType
    from typing import Any, ParamSpec, TypeVar, overload

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["Span", "emit", "span", "traced"]

_STATUS_UNSET, _STATUS_OK, _STATUS_ERROR = 0, 1, 2
_SEVERITY = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "warning": 13, "error": 17, "fatal": 21}
_SUFFIXES = (".start", ".ok", ".error")

if TYPE_CHECKING:
    AttributeValue = str | int | float | bool


def _base_name(name: str) -> str:
    """``driver.query.ok`` → ``driver.query``: the status comes from the outcome, not the name."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class Span:
    """A span being recorded; use as ``with ats.span("kernel.exec", rows=3) as s:``."""

    __slots__ = ("name", "attributes", "context", "parent", "start_ns", "_status", "_token", "component")

    def __init__(self, name: str, attributes: dict[str, AttributeValue], component: str = "ats") -> None:
        self.name = _base_name(name)
        self.attributes = attributes
        self.component = component
        self.parent: SpanContext | None = None
        self.context: SpanContext | None = None
        self.start_ns = 0
        self._status = _STATUS_UNSET
        self._token: Any = None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self.attributes[key] = value

    def set_status(self, ok: bool) -> None:
        self._status = _STATUS_OK if ok else _STATUS_ERROR

    def record_exception(self, exc: BaseException) -> None:
        """Marks the span failed with the exception's type; the message is scrubbed before any sink."""
        self._status = _STATUS_ERROR
        self.attributes["error.type"] = type(exc).__qualname__
        self.attributes["exception.type"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
        self.attributes["exception.message"] = str(exc)[:4096]

    def __enter__(self) -> Span:
        try:
            parent = current_span()
            rt = _runtime.current()
            new_trace = rt.pipeline.new_trace_id if rt is not None else _fallback_trace_id
            trace_id = parent.trace_id if parent is not None else new_trace()
            sampled = parent.sampled if parent is not None else True
            self.parent = parent
            self.context = SpanContext(trace_id, _new_span_id(), sampled)
            self._token = attach(self.context)
        except Exception as exc:  # never let telemetry break the with-block
            _runtime.count_error("span.enter", exc)
        self.start_ns = time.time_ns()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        end_ns = time.time_ns()
        try:
            if self._token is not None:
                detach(self._token)
            if exc is not None:
                self.record_exception(exc)
            elif self._status == _STATUS_UNSET:
                self._status = _STATUS_OK
            rt = _runtime.current()
            ctx = self.context
            if rt is not None and ctx is not None and _accepted(rt, self.name):
                parent = self.parent
                rt.pipeline.record_span(
                    self.name, self.component, ctx.trace_id, ctx.span_id,
                    parent.span_id if parent is not None else 0,
                    self.start_ns, end_ns, self._status, self.attributes,
                    parent_sampled=parent.sampled if parent is not None else True,
                    parent_remote=parent.remote if parent is not None else False,
                )
        except Exception as e:
            _runtime.count_error("span.exit", e)
        # Returning None: the user's exception (if any) propagates unchanged.


def _accepted(rt: _runtime.Runtime, name: str) -> bool:
    """Unregistered events are rejected (and counted by the registry), never recorded."""
    return rt.registry is None or rt.registry.accept(name)


def _fallback_trace_id() -> str:
    import secrets

    return secrets.token_hex(16)


def _new_span_id() -> int:
    from ats._native import Pipeline

    return Pipeline.new_span_id()


def span(name: str, /, **attributes: AttributeValue) -> Span:
    """A span named ``name`` (dot-scoped, e.g. ``kernel.exec``) with typed attributes."""
    return Span(name, dict(attributes))


if TYPE_CHECKING:

    @overload
    def traced(name: Callable[P, R], /) -> Callable[P, R]: ...
    @overload
    def traced(name: str | None = None, /) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(name: str | Callable[P, R] | None = None, /) -> Any:
    """Decorator: each call of the function (sync or async) is a span named ``name``
    (default: ``app.`` + the function's qualified name, in the built-in ``app`` family)."""
    if callable(name):
        return traced(None)(name)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        import inspect

        span_name = name or f"app.{fn.__qualname__}"
        if inspect.iscoroutinefunction(fn):
            async_fn: Callable[P, Awaitable[Any]] = fn

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with Span(span_name, {}):
                    return await async_fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with Span(span_name, {}):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def emit(event: str, /, *, severity: str = "info", body: str = "", **fields: AttributeValue) -> None:
    """A structured log record (seed 000 §6): ``evt`` = ``event``, correlated with the current span."""
    rt = _runtime.current()
    if rt is None or not _accepted(rt, event):
        return
    try:
        # An unknown severity is recorded as INFO rather than failing the caller.
        level = _SEVERITY.get(severity.lower(), 9)
        ctx = current_span()
        rt.pipeline.emit_log(
            event, "ats", level, body, time.time_ns(),
            ctx.trace_id if ctx is not None else None, ctx.span_id if ctx is not None else 0, dict(fields),
        )
    except Exception as e:
        _runtime.count_error("emit", e)
