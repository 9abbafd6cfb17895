"""ATS plugin: instrumentation of psycopg 3 (sync and async connections, ``psycopg_pool``).

psycopg 3 is pure Python above libpq, so its own classes are patched in place (no proxy, no
subclass swap): objects stay what psycopg made them, whichever factory, row factory or cursor
class the program uses.  The patched methods are the ones psycopg itself and ``psycopg_pool``
call, so every path is covered:

* ``Connection.connect`` / ``AsyncConnection.connect`` (classmethods; ``psycopg.connect`` is
  re-bound, ``psycopg_pool`` calls ``connection_class.connect``) -> ``driver.handshake``
* ``Cursor.execute`` / ``executemany`` / ``copy`` and ``ServerCursor.execute`` (+ async) ->
  ``driver.query`` (``Connection.execute`` is "cursor().execute()", so it is recorded once;
  ``ClientCursor`` / ``RawCursor`` inherit the patched methods)
* ``Connection.commit`` / ``rollback`` (+ async; also ``with conn:``) -> ``driver.query`` with
  statement ``COMMIT`` / ``ROLLBACK``
* ``Connection.close`` (+ async) -> ``driver.close``

A failure records the same span with status error, ``error.type`` = the psycopg exception
class (``UndefinedTable``, ``UniqueViolation``, ...) and ``db.response.status_code`` = its
SQLSTATE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from time import time_ns as _now
from types import ModuleType
from typing import Any, Final

from ats import hookimpl
from ats.drivers import (
    after_call,
    after_call_async,
    CLOSE,
    HANDSHAKE,
    NO_PEER,
    QUERY,
    CallSpec,
    DriverRecorder,
    Peer,
    cursor_rowcount,
    discover_capabilities,
    fixed_text,
    no_text,
    sqlstate_from,
    statement_text,
    wrap_async,
    publish_pool_levels,
    wrap_sync,
)
from ats.instrumentation import Instrumentor, count_error
from ats.side import Connector, DbapiSession, Session, SideSpec

__all__ = ["PsycopgInstrumentor", "ats_instrumentors", "instrumentor", "recorder"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-psycopg"
DIALECT: Final = "postgresql"

recorder: Final = DriverRecorder(COMPONENT, DIALECT)
sqlstate: Final = sqlstate_from("sqlstate")


# --------------------------------------------------------------------------- descriptions


def connection_peer(conn: Any) -> Peer:
    """Host, port and database of a psycopg connection (read once from libpq, then cached)."""
    peer: Peer | None = conn.__dict__.get("_ats_peer")
    if peer is None:
        info = conn.info
        peer = Peer(info.host or "", int(info.port or 0), info.dbname or "")
        conn.__dict__["_ats_peer"] = peer
    return peer


def _conninfo_peer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Peer:
    """The peer named by connect() arguments (for a failed handshake: no connection exists)."""
    from psycopg.conninfo import conninfo_to_dict

    conninfo = args[0] if args else kwargs.get("conninfo", "")
    params = {k: v for k, v in kwargs.items() if k in ("host", "port", "dbname")}
    merged = conninfo_to_dict(conninfo, **params)
    port = str(merged.get("port") or "5432").split(",")[0]
    host = str(merged.get("host") or "").split(",")[0]
    return Peer(host, int(port) if port.isdigit() else 0, str(merged.get("dbname") or ""))


def _cursor_peer(cur: Any) -> Peer:
    return connection_peer(cur._conn)


def _query_text(cur: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    query = args[0] if args else kwargs.get("query", kwargs.get("statement"))
    text = statement_text(query)
    if text is None and hasattr(query, "as_string"):  # psycopg.sql.Composable
        text = query.as_string(cur._conn)
    return text


def side_connector(conn: Any) -> Connector:
    """Opens a new sync connection with ``conn``'s libpq parameters (plans, capabilities)."""
    params = {o.keyword.decode(): o.val.decode() for o in conn.pgconn.info if o.val}

    def connect() -> Session:
        import psycopg

        return DbapiSession(psycopg.Connection.connect(**params, autocommit=True), DIALECT)

    return connect


def _statement_params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("params")


_CURSOR_SIDE: Final = SideSpec(lambda cur: side_connector(cur._conn), _statement_params)
_CONN_SIDE: Final = SideSpec(side_connector, _statement_params)
_EXECUTE: Final = CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate, side=_CURSOR_SIDE)
_EXECUTEMANY: Final = CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate)
def in_transaction(conn: Any) -> bool:
    """Whether commit()/rollback() will talk to the server (psycopg skips them when idle)."""
    return bool(conn.pgconn.transaction_status != 0)  # 0: PQTRANS_IDLE


_COMMIT: Final = CallSpec(QUERY, fixed_text("COMMIT"), connection_peer, None, sqlstate, in_transaction)
_ROLLBACK: Final = CallSpec(QUERY, fixed_text("ROLLBACK"), connection_peer, None, sqlstate, in_transaction)
_CLOSE: Final = CallSpec(CLOSE, no_text, connection_peer, None, sqlstate)


# --------------------------------------------------------------------------- wrappers


def _handshake_error(rt: Any, start: int, args: Any, kwargs: Any, exc: BaseException) -> None:
    try:
        peer = _conninfo_peer(args, kwargs)
    except Exception as peer_exc:
        count_error(f"{COMPONENT}.peer", peer_exc)
        peer = NO_PEER
    recorder.error(rt, HANDSHAKE, None, start, peer, exc, sqlstate(exc))


def _handshake_ok(rt: Any, start: int, conn: Any) -> None:
    try:
        peer = connection_peer(conn)
    except Exception as exc:
        count_error(f"{COMPONENT}.peer", exc)
        peer = NO_PEER
    recorder.ok(rt, HANDSHAKE, None, start, peer)
    discover_capabilities(recorder, rt, peer, _CONN_SIDE, conn)


def _make_connect(original: Any) -> Any:
    def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        rt = recorder.runtime()
        if rt is None:
            return original(cls, *args, **kwargs)
        start = _now()
        try:
            conn = original(cls, *args, **kwargs)
        except BaseException as exc:
            _handshake_error(rt, start, args, kwargs, exc)
            raise
        _handshake_ok(rt, start, conn)
        return conn

    return _named(connect, original)


def _make_async_connect(original: Any) -> Any:
    async def connect(cls: Any, *args: Any, **kwargs: Any) -> Any:
        rt = recorder.runtime()
        if rt is None:
            return await original(cls, *args, **kwargs)
        start = _now()
        try:
            conn = await original(cls, *args, **kwargs)
        except BaseException as exc:
            _handshake_error(rt, start, args, kwargs, exc)
            raise
        _handshake_ok(rt, start, conn)
        return conn

    return _named(connect, original)


def _make_copy(original: Any) -> Any:
    """``cursor.copy()`` is a context manager: the span covers the whole COPY block."""

    @contextmanager
    def copy(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        rt = recorder.runtime()
        if rt is None:
            with original(self, *args, **kwargs) as cp:
                yield cp
            return
        start = _now()
        try:
            with original(self, *args, **kwargs) as cp:
                yield cp
        except BaseException as exc:
            _finish(rt, start, self, args, kwargs, exc)
            raise
        _finish(rt, start, self, args, kwargs, None)

    return _named(copy, original)


def _make_async_copy(original: Any) -> Any:
    @asynccontextmanager
    async def copy(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        rt = recorder.runtime()
        if rt is None:
            async with original(self, *args, **kwargs) as cp:
                yield cp
            return
        start = _now()
        try:
            async with original(self, *args, **kwargs) as cp:
                yield cp
        except BaseException as exc:
            _finish(rt, start, self, args, kwargs, exc)
            raise
        _finish(rt, start, self, args, kwargs, None)

    return _named(copy, original)


def _finish(rt: Any, start: int, cur: Any, args: Any, kwargs: Any, exc: BaseException | None) -> None:
    try:
        sql = _query_text(cur, args, kwargs)
        peer = _cursor_peer(cur)
    except Exception as describe_exc:
        count_error(f"{COMPONENT}.copy", describe_exc)
        sql, peer = None, NO_PEER
    if exc is None:
        recorder.ok(rt, QUERY, sql, start, peer, _safe_rowcount(cur))
    else:
        recorder.error(rt, QUERY, sql, start, peer, exc, sqlstate(exc))


def _safe_rowcount(cur: Any) -> int:
    try:
        return cursor_rowcount(cur)
    except Exception:
        return -1


def _named(wrapper: Any, original: Any) -> Any:
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(wrapper, name, getattr(original, name, None))
    wrapper.__wrapped__ = original
    wrapper._ats_instrumented = True
    return wrapper


# --------------------------------------------------------------------------- instrumentor


class PsycopgInstrumentor(Instrumentor):
    """Patches psycopg 3's connection and cursor classes in place."""

    name = "psycopg"
    target_modules = ("psycopg",)
    supported_versions = ">=3.1,<4"

    def _patch(self, module: ModuleType) -> None:
        recorder.bind()
        conn_cls = module.Connection
        aconn_cls = module.AsyncConnection
        self.replace(conn_cls, "connect", classmethod(_make_connect(vars(conn_cls)["connect"].__func__)))
        self.replace(
            aconn_cls, "connect", classmethod(_make_async_connect(vars(aconn_cls)["connect"].__func__))
        )
        # `psycopg.connect = Connection.connect` was bound at import: re-bind it.
        self.replace(module, "connect", conn_cls.connect)
        for cls, wrap in ((conn_cls, wrap_sync), (aconn_cls, wrap_async)):
            self.replace(cls, "commit", wrap(recorder, vars(cls)["commit"], _COMMIT))
            self.replace(cls, "rollback", wrap(recorder, vars(cls)["rollback"], _ROLLBACK))
            self.replace(cls, "close", wrap(recorder, vars(cls)["close"], _CLOSE))
        for cls, wrap, make_copy in (
            (module.Cursor, wrap_sync, _make_copy),
            (module.AsyncCursor, wrap_async, _make_async_copy),
        ):
            self.replace(cls, "execute", wrap(recorder, vars(cls)["execute"], _EXECUTE))
            self.replace(cls, "executemany", wrap(recorder, vars(cls)["executemany"], _EXECUTEMANY))
            self.replace(cls, "copy", make_copy(vars(cls)["copy"]))
        # Server-side (named) cursors run DECLARE through their own execute().
        for cls, wrap in ((module.ServerCursor, wrap_sync), (module.AsyncServerCursor, wrap_async)):
            self.replace(cls, "execute", wrap(recorder, vars(cls)["execute"], _EXECUTE))

    def _unpatch(self, module: ModuleType) -> None:
        self.restore(module)
        recorder.unbind()


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = PsycopgInstrumentor()


# --------------------------------------------------------------------------- psycopg_pool


def _publish_pool(pool: Any) -> None:
    if recorder.runtime() is None:
        return
    try:
        stats = pool.get_stats()
        size, available = int(stats.get("pool_size", 0)), int(stats.get("pool_available", 0))
        publish_pool_levels(DIALECT, str(pool.name), max(0, size - available), available)
    except Exception as exc:
        count_error("psycopg_pool.levels", exc)


class PsycopgPoolInstrumentor(Instrumentor):
    """Publishes psycopg_pool's levels (``sqlx_pool_active``/``sqlx_pool_idle``,
    ``db.client.connection.count``) after every ``getconn``/``putconn``."""

    name = "psycopg_pool"
    target_modules = ("psycopg_pool",)
    supported_versions = ">=3.1,<4"

    def _patch(self, module: ModuleType) -> None:
        recorder.bind()
        for cls, wrap in ((module.ConnectionPool, after_call), (module.AsyncConnectionPool, after_call_async)):
            for method in ("getconn", "putconn"):
                self.replace(cls, method, wrap(vars(cls)[method], _publish_pool))

    def _unpatch(self, module: ModuleType) -> None:
        self.restore(module)


pool_instrumentor: Final = PsycopgPoolInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the psycopg 3 and psycopg_pool instrumentors to the ATS plugin host."""
    return [instrumentor, pool_instrumentor]
