"""The current span, carried in contextvars.

contextvars follow asyncio tasks by themselves; :func:`propagate_to_threads` makes
``threading.Thread`` and ``ThreadPoolExecutor`` carry them too. When no ATS span is
current but an OpenTelemetry span is, ATS spans join the OpenTelemetry trace.
W3C ``traceparent`` is injected and extracted by :func:`inject` / :func:`extract`.
"""

from __future__ import annotations

import contextvars
import sys
import threading

# Not `typing.TYPE_CHECKING`: importing typing is a measurable part of `import ats`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Mapping, MutableMapping
    from concurrent.futures import Future, ThreadPoolExecutor
    from types import ModuleType
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = ["SpanContext", "attach", "current_span", "detach", "extract", "inject", "propagate_to_threads"]

class SpanContext:
    """Identity of a span: ``trace_id`` is 32 lowercase hex digits, ``span_id`` a 64-bit int.
    Immutable and compared by value."""

    __slots__ = ("trace_id", "span_id", "sampled", "remote")
    trace_id: str
    span_id: int
    sampled: bool
    remote: bool

    def __init__(self, trace_id: str, span_id: int, sampled: bool = True, remote: bool = False) -> None:
        object.__setattr__(self, "trace_id", trace_id)
        object.__setattr__(self, "span_id", span_id)
        object.__setattr__(self, "sampled", sampled)
        object.__setattr__(self, "remote", remote)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SpanContext is immutable")

    def _key(self) -> tuple[str, int, bool, bool]:
        return (self.trace_id, self.span_id, self.sampled, self.remote)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpanContext) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"SpanContext(trace_id={self.trace_id!r}, span_id={self.span_id:#018x}, "
                f"sampled={self.sampled}, remote={self.remote})")

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id:016x}-{'01' if self.sampled else '00'}"


_CURRENT: contextvars.ContextVar[SpanContext | None] = contextvars.ContextVar("ats_current_span", default=None)


def current_span() -> SpanContext | None:
    """The innermost active span: ATS's own, else OpenTelemetry's current span, else None."""
    ctx = _CURRENT.get()
    if ctx is not None:
        return ctx
    if "opentelemetry.trace" in sys.modules:
        return _from_opentelemetry()
    return None


def _from_opentelemetry() -> SpanContext | None:
    try:
        from opentelemetry import trace

        sc = trace.get_current_span().get_span_context()
        if not sc.is_valid:
            return None
        return SpanContext(f"{sc.trace_id:032x}", sc.span_id, bool(sc.trace_flags.sampled), bool(sc.is_remote))
    except Exception:  # a broken OpenTelemetry install must not break the caller
        return None


def attach(ctx: SpanContext | None) -> contextvars.Token[SpanContext | None]:
    return _CURRENT.set(ctx)


def detach(token: contextvars.Token[SpanContext | None]) -> None:
    try:
        _CURRENT.reset(token)
    except ValueError:
        # Token from another context (e.g. a generator resumed elsewhere): fall back to clearing.
        _CURRENT.set(None)


_TRACEPARENT: re.Pattern[str] | None = None


def _traceparent_pattern() -> re.Pattern[str]:
    global _TRACEPARENT
    if _TRACEPARENT is None:
        import re

        _TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
    return _TRACEPARENT


def inject(carrier: MutableMapping[str, str], ctx: SpanContext | None = None) -> None:
    """Writes ``traceparent`` for ``ctx`` (default: the current span) into ``carrier``."""
    ctx = ctx if ctx is not None else current_span()
    if ctx is not None:
        carrier["traceparent"] = ctx.traceparent


def extract(carrier: Mapping[str, str]) -> SpanContext | None:
    """Reads a W3C ``traceparent`` (case-insensitive key); invalid values give None."""
    value = None
    for key, v in carrier.items():
        if key.lower() == "traceparent":
            value = v.strip().lower()
            break
    if value is None:
        return None
    m = _traceparent_pattern().match(value)
    if m is None:
        return None
    version, trace_id, span_hex, flags = m.group(1), m.group(2), m.group(3), m.group(4)
    # Version ff is forbidden; version 00 must have no trailing fields.
    if version == "ff" or (version == "00" and m.group(5)) or trace_id == "0" * 32 or span_hex == "0" * 16:
        return None
    return SpanContext(trace_id, int(span_hex, 16), sampled=bool(int(flags, 16) & 1), remote=True)


# --- threads --------------------------------------------------------------------------------
_ORIGINAL_START: Callable[[threading.Thread], None] | None = None
_ORIGINAL_SUBMIT: Callable[..., Future[Any]] | None = None


def propagate_to_threads() -> None:
    """Makes new threads and executor tasks start in a copy of the submitter's context."""
    global _ORIGINAL_START
    if _ORIGINAL_START is not None:
        return
    original_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        ctx = contextvars.copy_context()
        run = self.run
        self.run = lambda: ctx.run(run)  # type: ignore[method-assign]
        original_start(self)

    _ORIGINAL_START = original_start
    threading.Thread.start = start  # type: ignore[method-assign]
    # ThreadPoolExecutor is patched when it is imported: importing it here would put
    # concurrent.futures (and logging) into the start-up of every process ats-run starts.
    module = sys.modules.get(_EXECUTOR_MODULE)
    if module is not None:
        _patch_executor(module)
    else:
        from ats.instrumentation import _watcher

        _watcher.watch(_EXECUTOR_MODULE, _patch_executor)


_EXECUTOR_MODULE = "concurrent.futures.thread"


def _patch_executor(module: ModuleType) -> None:
    global _ORIGINAL_SUBMIT
    if _ORIGINAL_START is None or _ORIGINAL_SUBMIT is not None:
        return  # restored meanwhile, or patched already
    executor: type[ThreadPoolExecutor] = module.ThreadPoolExecutor
    original_submit = executor.submit

    def submit(self: ThreadPoolExecutor, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    _ORIGINAL_SUBMIT = original_submit
    executor.submit = submit  # type: ignore[method-assign,assignment]


def restore_threads() -> None:
    global _ORIGINAL_START, _ORIGINAL_SUBMIT
    if _ORIGINAL_START is not None:
        threading.Thread.start = _ORIGINAL_START  # type: ignore[method-assign,assignment]
    if _ORIGINAL_SUBMIT is not None:
        from concurrent.futures import ThreadPoolExecutor

        ThreadPoolExecutor.submit = _ORIGINAL_SUBMIT  # type: ignore[method-assign]
    elif _ORIGINAL_START is not None:
        from ats.instrumentation import _watcher

        _watcher.unwatch(_EXECUTOR_MODULE, _patch_executor)
    _ORIGINAL_START = _ORIGINAL_SUBMIT = None
