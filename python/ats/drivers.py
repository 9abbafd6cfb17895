"""Shared recording for database driver plugins (``driver.*`` spans).

A driver plugin (``ats-psycopg``, ``ats-psycopg2``, ``ats-asyncpg``, ``ats-pymysql``, ...)
owns one :class:`DriverRecorder` and wraps the library's methods with :func:`wrap_sync` /
:func:`wrap_async` (or calls :meth:`DriverRecorder.ok` / :meth:`DriverRecorder.error` from its
own overrides).  Each recorded call is exactly one native call
(``Pipeline.record_query``) carrying the statement text (normalised and redacted natively),
the peer, the namespace, the rows and, on failure, the driver's error class and the server's
SQLSTATE.  Nothing here ever raises into the user's call: failures of ATS's own code are
counted (:func:`ats.instrumentation.count_error`).

**One span per statement with an outer layer.**  A higher layer that opens its own span for a
statement (an ORM such as SQLAlchemy) enters :func:`outer_statement`; while it is active the
driver layer does not record a span but fills the yielded :class:`DriverObservation` list with
what it saw (timing, peer, namespace, rows, error class, SQLSTATE), for the outer layer to put
on its single span.

Transactions: ``commit()`` / ``rollback()`` calls made through the driver API are recorded as
``driver.query`` spans whose statement is ``COMMIT`` / ``ROLLBACK`` (so
``db.operation`` = ``COMMIT`` / ``ROLLBACK``): one span per round trip, like every other
statement, timed and with their own error status.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final, NamedTuple

from ats import capabilities, plans, statements
from ats.instrumentation import count_error
from ats.side import SideSpec

__all__ = [
    "CLOSE",
    "HANDSHAKE",
    "NO_PEER",
    "PREPARE",
    "QUERY",
    "CallSpec",
    "DriverObservation",
    "DriverRecorder",
    "Peer",
    "SubclassCache",
    "cursor_rowcount",
    "discover_capabilities",
    "after_call",
    "after_call_async",
    "publish_pool_levels",
    "driver_layer_active",
    "fixed_text",
    "no_text",
    "sqlstate_from",
    "outer_statement",
    "statement_text",
    "wrap_async",
    "wrap_sync",
]

# record_query operation codes (contract: 0 handshake, 1 query, 2 prepare, 3 close)
HANDSHAKE: Final = 0
QUERY: Final = 1
PREPARE: Final = 2
CLOSE: Final = 3

_time_ns = time.time_ns


class Peer(NamedTuple):
    """Where a connection goes: ``net.peer.name``/``server.address``, port, ``db.namespace``."""

    name: str
    port: int
    namespace: str


NO_PEER: Final = Peer("", 0, "")


class DriverObservation(NamedTuple):
    """What the driver layer saw of one call made inside :func:`outer_statement`."""

    op: int
    sql: str | None
    start_ns: int
    end_ns: int
    peer: Peer
    rows: int
    error_type: str | None
    status_code: str | None
    component: str
    #: The EXPLAIN this slow read asked for, for the outer layer's span to link.
    plan: Any = None


_outer: ContextVar[list[DriverObservation] | None] = ContextVar("ats_driver_outer", default=None)


@contextmanager
def outer_statement() -> Iterator[list[DriverObservation]]:
    """Let an outer layer own the span of the statements run in this block.

    Driver plugins record no span inside the block; each call they would have recorded is
    appended to the yielded list instead (in call order).
    """
    observed: list[DriverObservation] = []
    token = _outer.set(observed)
    try:
        yield observed
    finally:
        _outer.reset(token)


_bound: set[DriverRecorder] = set()


def driver_layer_active(component: str) -> bool:
    """Whether the driver plugin ``component`` (``ats-psycopg``...) is instrumenting: then a
    call it did not hand to :func:`outer_statement` did not reach the server (e.g. psycopg's
    ``rollback()`` outside a transaction), and the outer layer records nothing either."""
    return any(rec.component == component for rec in tuple(_bound))


def statement_text(query: object) -> str | None:
    """The text of a statement given as ``str`` or ``bytes`` (``None`` for anything else)."""
    if isinstance(query, str):
        return query
    if isinstance(query, (bytes, bytearray, memoryview)):
        return bytes(query).decode("utf-8", "replace")
    return None


def sqlstate_from(attribute: str) -> Callable[[BaseException], str | None]:
    """A ``CallSpec.status`` reading the SQLSTATE from the exception's ``attribute``."""

    def status(exc: BaseException) -> str | None:
        code = getattr(exc, attribute, None)
        return code if isinstance(code, str) else None

    return status


def fixed_text(text: str) -> Callable[..., str]:
    """A ``CallSpec.sql`` for calls whose statement is implied (``COMMIT``, ``ROLLBACK``...)."""

    def sql(*_: Any) -> str:
        return text

    return sql


def no_text(*_: Any) -> None:
    """A ``CallSpec.sql`` for calls without a statement (connect, close)."""
    return None


def cursor_rowcount(cur: Any, _result: Any = None) -> int:
    """A ``CallSpec.rows`` reading DB-API ``cursor.rowcount`` (-1 when unknown)."""
    count = cur.rowcount
    # (unbuffered MySQL cursors report an all-ones unsigned count: unknown too)
    return count if isinstance(count, int) and 0 <= count < 2**63 else -1


def _no_runtime() -> Any:
    return None


class DriverRecorder:
    """Records the calls of one driver plugin (its ``component`` and ``dialect``).

    :meth:`bind` (from the instrumentor's ``_patch``) looks up ATS's runtime accessors once;
    :meth:`unbind` makes every wrapper a plain pass-through again.
    """

    __slots__ = ("component", "dialect", "_current", "_current_span")

    def __init__(self, component: str, dialect: str) -> None:
        self.component: Final = component
        self.dialect: Final = dialect
        self._current: Callable[[], Any] = _no_runtime
        self._current_span: Callable[[], Any] = _no_runtime

    def bind(self) -> None:
        self._current = getattr(_optional_module("ats._runtime"), "current", _no_runtime)
        self._current_span = getattr(_optional_module("ats.context"), "current_span", _no_runtime)
        _bound.add(self)

    def unbind(self) -> None:
        self._current = _no_runtime
        self._current_span = _no_runtime
        _bound.discard(self)

    def runtime(self) -> Any:
        """The running ATS runtime, or ``None`` (then nothing is recorded); never raises."""
        try:
            return self._current()
        except Exception as exc:
            count_error(f"{self.component}.runtime", exc)
            return None

    def ok(
        self, rt: Any, op: int, sql: str | None, start: int, peer: Peer, rows: int = -1,
        plan: plans.PlanJob | None = None,
    ) -> None:  # fmt: skip
        """Record one successful call that started at ``start`` and ends now; never raises.

        ``plan``: the EXPLAIN to queue once the span is recorded (:func:`ats.plans.request`).
        """
        self._record(rt, op, sql, start, _time_ns(), peer, rows, None, None, plan)

    def error(
        self, rt: Any, op: int, sql: str | None, start: int, peer: Peer, exc: BaseException,
        status_code: str | None,
    ) -> None:  # fmt: skip
        """Record one failed call (the caller re-raises ``exc`` untouched); never raises."""
        self._record(rt, op, sql, start, _time_ns(), peer, -1, type(exc).__name__, status_code)

    def _record(
        self, rt: Any, op: int, sql: str | None, start: int, end: int, peer: Peer, rows: int,
        error_type: str | None, status_code: str | None, plan: plans.PlanJob | None = None,
    ) -> None:  # fmt: skip
        try:
            observed = _outer.get()
            if observed is not None:
                observed.append(
                    DriverObservation(
                        op, sql, start, end, peer, rows, error_type, status_code, self.component, plan
                    )
                )
                return
            self._emit(rt, self.dialect, op, sql, start, end, peer, rows, error_type, status_code, plan)
        except Exception as exc:
            count_error(f"{self.component}.record", exc)

    def record_statement(
        self, rt: Any, dialect: str, op: int, sql: str | None, start: int, end: int, peer: Peer,
        rows: int, error_type: str | None, status_code: str | None, plan: plans.PlanJob | None = None,
    ) -> None:  # fmt: skip
        """Record one span now, for an outer layer (never diverted to an enclosing
        :func:`outer_statement`: the outer layer is the one that owns it); never raises."""
        try:
            self._emit(rt, dialect, op, sql, start, end, peer, rows, error_type, status_code, plan)
        except Exception as exc:
            count_error(f"{self.component}.record", exc)

    def _emit(
        self, rt: Any, dialect: str, op: int, sql: str | None, start: int, end: int, peer: Peer,
        rows: int, error_type: str | None, status_code: str | None, plan: plans.PlanJob | None = None,
    ) -> None:  # fmt: skip
        span = self._current_span()
        trace_id = None if span is None else span.trace_id
        if plan is not None and trace_id is None:  # a root span: its plan record needs the id
            trace_id = rt.pipeline.new_trace_id()
        facts = None
        if op == QUERY and sql is not None:
            try:
                facts = statements.describe(rt, dialect, sql, start, end)
            except Exception as exc:
                count_error(f"{self.component}.classify", exc)
            if facts is not None and facts.ddl and trace_id is None:
                trace_id = rt.pipeline.new_trace_id()  # the DDL log must name the span's trace
        span_id = rt.pipeline.record_query(
            op, dialect, sql, start, end, error_type, trace_id,
            0 if span is None else span.span_id,
            True if span is None else span.sampled,
            self.component, peer.name, peer.port, peer.namespace, rows, status_code,
            None if facts is None else facts.slo_class,
        )  # fmt: skip
        if plan is not None:
            plan.link(trace_id, span_id)
        if facts is not None:
            try:
                statements.after_record(
                    rt, facts, dialect, self.component, start, end, trace_id, span_id, error_type
                )
            except Exception as exc:
                count_error(f"{self.component}.statement", exc)


class CallSpec(NamedTuple):
    """How to describe one wrapped method's call.

    Every function receives the bound object (``self``) first and may raise: a failure is
    counted and the call is recorded without that piece.
    """

    op: int
    #: ``(self, args, kwargs) -> statement text or None``
    sql: Callable[[Any, tuple[Any, ...], dict[str, Any]], str | None]
    #: ``(self) -> Peer``
    peer: Callable[[Any], Peer]
    #: ``(self, result) -> rows returned/affected, -1 when unknown``
    rows: Callable[[Any, Any], int] | None
    #: ``(exception) -> SQLSTATE or None``
    status: Callable[[BaseException], str | None]
    #: ``(self) -> whether this call goes to the server`` (e.g. a ``commit()`` outside any
    #: transaction sends nothing and records nothing); ``None``: always.
    applies: Callable[[Any], bool] | None = None
    #: How ATS may query this call's server on a separate connection (plans of slow reads,
    #: capability discovery on a handshake; :mod:`ats.side`); ``None``: never.
    side: SideSpec | None = None


def _describe(rec: DriverRecorder, spec: CallSpec, obj: Any, args: Any, kwargs: Any) -> tuple[str | None, Peer]:
    try:
        sql = spec.sql(obj, args, kwargs)
    except Exception as exc:
        count_error(f"{rec.component}.sql", exc)
        sql = None
    try:
        peer = spec.peer(obj)
    except Exception as exc:
        count_error(f"{rec.component}.peer", exc)
        peer = NO_PEER
    return sql, peer


def _skipped(rec: DriverRecorder, spec: CallSpec, obj: Any) -> bool:
    if spec.applies is None:
        return False
    try:
        return not spec.applies(obj)
    except Exception as exc:
        count_error(f"{rec.component}.applies", exc)
        return False


def _finish_ok(rec: DriverRecorder, rt: Any, spec: CallSpec, start: int, obj: Any, args: Any, kwargs: Any, result: Any) -> None:
    sql, peer = _describe(rec, spec, obj, args, kwargs)
    rows = -1
    if spec.rows is not None:
        try:
            rows = spec.rows(obj, result)
        except Exception as exc:
            count_error(f"{rec.component}.rows", exc)
    plan = None
    if spec.side is not None:
        if spec.op == HANDSHAKE:
            discover_capabilities(rec, rt, peer, spec.side, obj)
        else:
            plan = plans.request(rt.pipeline, rec.dialect, sql, start, spec.side, obj, args, kwargs)
    rec.ok(rt, spec.op, sql, start, peer, rows, plan)


def discover_capabilities(rec: DriverRecorder, rt: Any, peer: Peer, side: SideSpec, conn: Any) -> None:
    """Capability discovery for the server of a new connection (:mod:`ats.capabilities`)."""
    capabilities.discover(
        rt.pipeline, rec.dialect, peer.name, peer.port, peer.namespace, lambda: side.connector(conn)
    )


def _finish_error(rec: DriverRecorder, rt: Any, spec: CallSpec, start: int, obj: Any, args: Any, kwargs: Any, exc: BaseException) -> None:
    sql, peer = _describe(rec, spec, obj, args, kwargs)
    try:
        status = spec.status(exc)
    except Exception as status_exc:
        count_error(f"{rec.component}.status", status_exc)
        status = None
    rec.error(rt, spec.op, sql, start, peer, exc, status)


def wrap_sync(rec: DriverRecorder, original: Callable[..., Any], spec: CallSpec) -> Callable[..., Any]:
    """A method that calls ``original`` and records it per ``spec``; result/errors unchanged."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        rt = rec.runtime()
        if rt is None or _skipped(rec, spec, self):
            return original(self, *args, **kwargs)
        start = _time_ns()
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            _finish_error(rec, rt, spec, start, self, args, kwargs, exc)
            raise
        _finish_ok(rec, rt, spec, start, self, args, kwargs, result)
        return result

    _copy_names(wrapper, original)
    return wrapper


def wrap_async(
    rec: DriverRecorder, original: Callable[..., Awaitable[Any]], spec: CallSpec
) -> Callable[..., Awaitable[Any]]:
    """The coroutine-function counterpart of :func:`wrap_sync`."""

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        rt = rec.runtime()
        if rt is None or _skipped(rec, spec, self):
            return await original(self, *args, **kwargs)
        start = _time_ns()
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            _finish_error(rec, rt, spec, start, self, args, kwargs, exc)
            raise
        _finish_ok(rec, rt, spec, start, self, args, kwargs, result)
        return result

    _copy_names(wrapper, original)
    return wrapper


class SubclassCache:
    """Instrumented subclasses of driver classes, derived once per class (thread-safe).

    For drivers whose objects are C types (psycopg2, sqlite3): the library's own factory
    arguments receive the derived class, so objects stay real driver objects.
    """

    def __init__(self, root: Callable[[], type], make: Callable[[type], type]) -> None:
        self._root = root
        self._make = make
        self._lock = threading.RLock()  # derivations nest (connection -> cursor)
        self._classes: dict[type, type] = {}

    def get(self, factory: Any) -> Any:
        """The instrumented subclass of class ``factory``; anything else is returned as is."""
        if not isinstance(factory, type) or not issubclass(factory, self._root()):
            return factory  # a function (or None) cannot be subclassed: passed on untouched
        if getattr(factory, "_ats_instrumented", False):
            return factory
        derived = self._classes.get(factory)
        if derived is None:
            with self._lock:
                derived = self._classes.get(factory)
                if derived is None:
                    derived = self._classes[factory] = self._make(factory)
        return derived


def _copy_names(wrapper: Any, original: Any) -> None:
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, name, getattr(original, name))
        except (AttributeError, TypeError):
            pass
    wrapper.__wrapped__ = original
    wrapper._ats_instrumented = True


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# --------------------------------------------------------------------------- pool gauges

_POOL_GAUGES: list[Any] = []


def publish_pool_levels(dialect: str, pool_name: str, used: int, idle: int) -> None:
    """Set a connection pool's levels: ``sqlx_pool_active`` / ``sqlx_pool_idle``
    ``{dialect, id}`` (seed 000 §5) and OpenTelemetry's ``db.client.connection.count``
    ``{db.client.connection.state, db.client.connection.pool.name}``; never raises."""
    try:
        if not _POOL_GAUGES:
            from ats import metrics

            _POOL_GAUGES.extend((
                metrics.gauge("sqlx_pool_active", "{connection}"),
                metrics.gauge("sqlx_pool_idle", "{connection}"),
                metrics.gauge("db.client.connection.count", "{connection}"),
            ))
        active_gauge, idle_gauge, count_gauge = _POOL_GAUGES
        active_gauge.set(used, {"dialect": dialect, "id": pool_name})
        idle_gauge.set(idle, {"dialect": dialect, "id": pool_name})
        count_gauge.set(used, {"db.client.connection.state": "used", "db.client.connection.pool.name": pool_name})
        count_gauge.set(idle, {"db.client.connection.state": "idle", "db.client.connection.pool.name": pool_name})
    except Exception as exc:
        count_error("pool.levels", exc)


def after_call(original: Callable[..., Any], then: Callable[[Any], None]) -> Callable[..., Any]:
    """``original`` (a method), then ``then(self)`` however it ended; result/errors unchanged."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            then(self)

    _copy_names(wrapper, original)
    return wrapper


def after_call_async(original: Callable[..., Awaitable[Any]], then: Callable[[Any], None]) -> Callable[..., Awaitable[Any]]:
    """The coroutine-method counterpart of :func:`after_call`."""

    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            then(self)

    _copy_names(wrapper, original)
    return wrapper
