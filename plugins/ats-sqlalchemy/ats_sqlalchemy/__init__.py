"""ATS plugin: instrumentation of SQLAlchemy 2 (sync and async engines, pool events).

SQLAlchemy's own event API is used at class level, so every engine is covered, including the
ones created after instrumentation and the sync engine inside ``create_async_engine``:

* ``Engine`` ``before_cursor_execute`` / ``after_cursor_execute`` / ``handle_error`` ->
  one ``driver.query`` span per statement (component ``ats-sqlalchemy``, dialect from the
  engine).  Around the cursor execution the layer enters :func:`ats.drivers.outer_statement`,
  so a driver plugin that is also active (``ats-psycopg``, ``ats-asyncpg``, ``ats-pymysql``...)
  hands its observation (peer, rows, SQLSTATE, error class) over instead of recording a second
  span; the one span carries both.
* ``DefaultDialect.do_commit`` / ``do_rollback`` -> ``driver.query`` ``COMMIT`` / ``ROLLBACK``,
  under the same rule: recorded once, and not at all when a driver plugin says the call did not
  reach the server (a pool's reset-on-return ``rollback()`` of an idle connection).
* ``Pool`` ``connect`` / ``checkout`` / ``checkin`` / ``close`` -> the gauges
  ``sqlx_pool_active`` / ``sqlx_pool_idle`` ``{dialect, id}`` and OpenTelemetry's
  ``db.client.connection.count{db.client.connection.state, db.client.connection.pool.name}``.
* ``sqlcommenter.enabled`` (off by default): the statement sent to the server gets
  ``/*traceparent='00-<trace>-<span>-01'*/`` appended; the recorded text never has it.
"""

from __future__ import annotations

from time import time_ns as _now
from types import ModuleType
from typing import Any, Final

from ats import hookimpl
from ats.drivers import (
    NO_PEER,
    QUERY,
    DriverObservation,
    DriverRecorder,
    Peer,
    driver_layer_active,
    outer_statement,
    publish_pool_levels,
)
from ats.instrumentation import Instrumentor, count_error
from ats.statements import commenter_enabled

__all__ = ["SqlAlchemyInstrumentor", "ats_instrumentors", "instrumentor", "recorder"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-sqlalchemy"
#: The recorder's own dialect is only a default: each span takes its engine's.
recorder: Final = DriverRecorder(COMPONENT, "other_sql")

_STATE: Final = "_ats_statement"


def dialect_of(dialect: Any) -> str:
    """ATS dialect name of a SQLAlchemy dialect (``mariadb`` is served by the mysql family)."""
    name = str(getattr(dialect, "name", ""))
    if name in ("postgresql", "sqlite"):
        return name
    if name in ("mysql", "mariadb"):
        return "mysql"
    return "other_sql"


def engine_peer(engine: Any) -> Peer:
    """Host, port and database of an engine's URL (cached on the engine)."""
    peer: Peer | None = engine.__dict__.get("_ats_peer")
    if peer is None:
        url = engine.url
        peer = Peer(url.host or "", int(url.port or 0), url.database or "")
        if peer.port == 0 and peer.name:
            default = getattr(engine.dialect, "default_port", None) or {"postgresql": 5432, "mysql": 3306}.get(
                dialect_of(engine.dialect), 0
            )
            peer = peer._replace(port=int(default))
        engine.__dict__["_ats_peer"] = peer
    return peer


def _sqlstate(exc: BaseException | None) -> str | None:
    for name in ("sqlstate", "pgcode"):
        code = getattr(exc, name, None)
        if isinstance(code, str) and code:
            return code
    return None


class _Pending:
    """One statement between ``before_cursor_execute`` and its end."""

    __slots__ = ("start", "sql", "outer", "observed", "rt")

    def __init__(self, rt: Any, sql: str, start: int) -> None:
        self.rt = rt
        self.sql = sql
        self.start = start
        self.outer = outer_statement()
        self.observed: list[DriverObservation] = self.outer.__enter__()

    def close(self) -> None:
        self.outer.__exit__(None, None, None)


def _merge(
    rt: Any, dialect: str, sql: str | None, start: int, end: int, peer: Peer, rows: int,
    observed: list[DriverObservation], error_type: str | None, status_code: str | None,
) -> None:  # fmt: skip
    """One span from what SQLAlchemy saw and what the driver layer handed over (with the plan
    capture a slow read asked for, linked to this span)."""
    plan = None
    for seen in observed:  # the driver's view of the server wins: it saw the round trip
        if seen.op != QUERY:
            continue
        plan = seen.plan or plan
        if seen.peer != NO_PEER:
            peer = seen.peer
        if seen.rows >= 0:
            rows = seen.rows
        if seen.error_type is not None:
            error_type = seen.error_type
        status_code = seen.status_code or status_code
    recorder.record_statement(rt, dialect, QUERY, sql, start, end, peer, rows, error_type, status_code, plan)


def _traceparent(rt: Any) -> str | None:
    from ats.context import current_span

    span = current_span()
    if span is None:
        return None
    return f"/*traceparent='{span.traceparent}'*/"


# --------------------------------------------------------------------------- engine events


def _before(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> Any:
    try:
        rt = recorder.runtime()
        if rt is None or context is None or not isinstance(statement, str):
            return statement, parameters
        previous = getattr(context, _STATE, None)
        if previous is not None:  # an earlier statement that never ended (no event fired)
            previous.close()
        context.__dict__[_STATE] = _Pending(rt, statement, _now())
        if commenter_enabled(rt):
            comment = _traceparent(rt)
            if comment is not None:
                statement = f"{statement} {comment}"
    except Exception as exc:
        count_error(f"{COMPONENT}.before", exc)
    return statement, parameters


def _end(context: Any, cursor: Any, exc: BaseException | None) -> None:
    pending: _Pending | None = context.__dict__.pop(_STATE, None) if context is not None else None
    if pending is None:
        return
    end = _now()
    pending.close()
    engine = context.root_connection.engine
    rows = -1
    if exc is None and cursor is not None:
        count = getattr(cursor, "rowcount", -1)
        rows = count if isinstance(count, int) and 0 <= count < 2**63 else -1
    _merge(
        pending.rt, dialect_of(engine.dialect), pending.sql, pending.start, end, engine_peer(engine), rows,
        pending.observed, None if exc is None else type(exc).__name__, _sqlstate(exc),
    )  # fmt: skip


def _after(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
    try:
        _end(context, cursor, None)
    except Exception as exc:
        count_error(f"{COMPONENT}.after", exc)


def _on_error(exception_context: Any) -> None:
    try:
        _end(exception_context.execution_context, None, exception_context.original_exception)
    except Exception as exc:
        count_error(f"{COMPONENT}.error", exc)


# --------------------------------------------------------------------------- transactions


def _make_txn(original: Any, text: str) -> Any:
    def txn(self: Any, dbapi_connection: Any) -> Any:
        rt = recorder.runtime()
        if rt is None:
            return original(self, dbapi_connection)
        dialect = dialect_of(self)
        driver = f"ats-{getattr(self, 'driver', '')}"
        start = _now()
        with outer_statement() as observed:
            try:
                result = original(self, dbapi_connection)
            except BaseException as exc:
                _txn_end(rt, dialect, driver, text, start, observed, exc)
                raise
        _txn_end(rt, dialect, driver, text, start, observed, None)
        return result

    txn.__name__ = getattr(original, "__name__", "txn")
    txn.__qualname__ = getattr(original, "__qualname__", "txn")
    txn.__wrapped__ = original  # type: ignore[attr-defined]
    txn._ats_instrumented = True  # type: ignore[attr-defined]
    return txn


def _txn_end(
    rt: Any, dialect: str, driver: str, text: str, start: int, observed: list[DriverObservation],
    exc: BaseException | None,
) -> None:  # fmt: skip
    try:
        end = _now()
        if not observed and driver_layer_active(driver):
            return  # the driver plugin saw no round trip: nothing was sent
        _merge(
            rt, dialect, text, start, end, NO_PEER, -1, observed,
            None if exc is None else type(exc).__name__, _sqlstate(exc),
        )  # fmt: skip
    except Exception as err:
        count_error(f"{COMPONENT}.transaction", err)


# --------------------------------------------------------------------------- pool gauges


def _pool_levels(pool: Any, shift: int) -> None:
    """Publish the pool's levels; ``shift`` moves one connection from used to idle (the
    ``checkin`` event fires before the pool takes the connection back)."""
    checkedout = getattr(pool, "checkedout", None)
    checkedin = getattr(pool, "checkedin", None)
    if checkedout is None or checkedin is None:
        return  # NullPool / StaticPool keep no levels
    name = pool.__dict__.get("_ats_name")
    if not isinstance(name, str):
        return  # published from engine_connect, once the pool has its engine's name
    used = max(0, int(checkedout()) - shift)
    idle = max(0, int(checkedin()) + shift)
    publish_pool_levels(pool.__dict__.get("_ats_dialect", "other_sql"), name, used, idle)


def _pool_listener(shift: int) -> Any:
    def listener(dbapi_connection: Any, record: Any, *rest: Any) -> None:
        try:
            if recorder.runtime() is None:
                return
            pool = getattr(record, "_ConnectionRecord__pool", None)
            if pool is not None:
                _pool_levels(pool, shift)
        except Exception as exc:
            count_error(f"{COMPONENT}.pool", exc)

    return listener


def _engine_created(engine: Any) -> None:
    """Name the engine's pool once (``engine_connect`` runs for every engine)."""
    try:
        pool = engine.pool
        if "_ats_name" not in pool.__dict__:
            peer = engine_peer(engine)
            pool.__dict__["_ats_name"] = f"{peer.name}:{peer.port}/{peer.namespace}"
            pool.__dict__["_ats_dialect"] = dialect_of(engine.dialect)
            _pool_levels(pool, 0)
    except Exception as exc:
        count_error(f"{COMPONENT}.engine", exc)


def _engine_connect(conn: Any) -> None:
    _engine_created(conn.engine)


# --------------------------------------------------------------------------- instrumentor


class SqlAlchemyInstrumentor(Instrumentor):
    """Listens to SQLAlchemy's engine and pool events at class level."""

    name = "sqlalchemy"
    target_modules = ("sqlalchemy",)
    supported_versions = ">=2.0,<2.1"
    distribution = "SQLAlchemy"

    def __init__(self) -> None:
        super().__init__()
        self._listeners: list[tuple[Any, str, Any]] = []

    def _patch(self, module: ModuleType) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.engine.default import DefaultDialect
        from sqlalchemy.pool import Pool

        recorder.bind()
        self._listeners = [
            (Engine, "before_cursor_execute", _before),
            (Engine, "after_cursor_execute", _after),
            (Engine, "handle_error", _on_error),
            (Engine, "engine_connect", _engine_connect),
            (Pool, "connect", _pool_listener(0)),
            (Pool, "checkout", _pool_listener(0)),
            (Pool, "checkin", _pool_listener(1)),
            (Pool, "close", _pool_listener(0)),
        ]
        for target, name, fn in self._listeners:
            if name == "before_cursor_execute":
                event.listen(target, name, fn, retval=True)
            else:
                event.listen(target, name, fn)
        self.replace(DefaultDialect, "do_commit", _make_txn(vars(DefaultDialect)["do_commit"], "COMMIT"))
        self.replace(DefaultDialect, "do_rollback", _make_txn(vars(DefaultDialect)["do_rollback"], "ROLLBACK"))

    def _unpatch(self, module: ModuleType) -> None:
        from sqlalchemy import event

        for target, name, fn in self._listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)
        self._listeners = []
        self.restore(module)
        recorder.unbind()


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = SqlAlchemyInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the SQLAlchemy instrumentor to the ATS plugin host."""
    return [instrumentor]
