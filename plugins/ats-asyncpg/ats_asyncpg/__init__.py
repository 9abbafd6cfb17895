"""ATS plugin: instrumentation of asyncpg (connections, pools, prepared statements).

asyncpg's ``Connection`` and ``PreparedStatement`` are Python classes over a C protocol; their
coroutine methods are patched in place on the classes (no proxy: ``isinstance``, custom
``connection_class=`` subclasses and the pool's ``PoolConnectionProxy``, which forwards to the
connection's methods, all keep working).  The handshake is recorded in
``asyncpg.connect_utils._connect``, which every path (``asyncpg.connect``,
``from asyncpg import connect``, pools, a pool's custom ``connect=``) goes through.

* connect -> ``driver.handshake``
* ``Connection.execute`` / ``executemany`` / ``fetch`` / ``fetchval`` / ``fetchrow`` /
  ``fetchmany`` / ``copy_*`` and ``PreparedStatement.fetch*`` / ``executemany`` ->
  ``driver.query`` (a transaction's ``BEGIN`` / ``COMMIT`` / ``ROLLBACK`` and a pool's reset
  query go through ``Connection.execute``: recorded like any statement)
* ``Connection.prepare`` -> ``driver.prepare``
* ``Connection.close`` -> ``driver.close``

A failure records the span with status error, ``error.type`` = the asyncpg exception class
(``UndefinedTableError``, ...) and ``db.response.status_code`` = its SQLSTATE.
"""

from __future__ import annotations

from time import time_ns as _now
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlsplit

from ats import hookimpl
from ats.drivers import (
    after_call_async,
    CLOSE,
    HANDSHAKE,
    NO_PEER,
    PREPARE,
    QUERY,
    CallSpec,
    DriverRecorder,
    Peer,
    discover_capabilities,
    no_text,
    publish_pool_levels,
    sqlstate_from,
    statement_text,
    wrap_async,
)
from ats.instrumentation import Instrumentor, count_error
from ats.side import Connector, Session, SideSpec

__all__ = ["AsyncpgInstrumentor", "ats_instrumentors", "instrumentor", "recorder"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-asyncpg"
DIALECT: Final = "postgresql"

recorder: Final = DriverRecorder(COMPONENT, DIALECT)
sqlstate: Final = sqlstate_from("sqlstate")


def connection_peer(conn: Any) -> Peer:
    addr = conn._addr
    params = conn._params
    database = getattr(params, "database", "") or ""
    if isinstance(addr, tuple):
        return Peer(str(addr[0]), int(addr[1]), database)
    return Peer(str(addr), 0, database)  # a unix socket path


def _kwargs_peer(kwargs: dict[str, Any]) -> Peer:
    host, port, database = kwargs.get("host"), kwargs.get("port"), kwargs.get("database")
    dsn = kwargs.get("dsn")
    if isinstance(dsn, str) and "://" in dsn:
        parts = urlsplit(dsn)
        host = host or parts.hostname
        port = port or parts.port
        database = database or parts.path.lstrip("/")
    if isinstance(host, (list, tuple)):
        host = host[0] if host else None
    if isinstance(port, (list, tuple)):
        port = port[0] if port else None
    return Peer(str(host or ""), int(port or 5432), str(database or ""))


def _statement_peer(stmt: Any) -> Peer:
    return connection_peer(stmt._connection)


def _query_text(_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    return statement_text(args[0] if args else kwargs.get("query", kwargs.get("command")))


def _copy_query_text(_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    query = statement_text(args[0] if args else kwargs.get("query"))
    return None if query is None else f"COPY ({query}) TO STDOUT"


def _copy_table_text(direction: str) -> Any:
    def text(_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        table = args[0] if args else kwargs.get("table_name")
        schema = kwargs.get("schema_name")
        if not isinstance(table, str):
            return None
        name = f"{schema}.{table}" if isinstance(schema, str) else table
        return f"COPY {name} {direction}"

    return text


def _prepared_text(stmt: Any, _args: Any, _kwargs: Any) -> str | None:
    return statement_text(stmt._query)


def _status_rows(_: Any, status: Any) -> int:
    """Rows from a command tag such as ``INSERT 0 3`` / ``UPDATE 2`` / ``COPY 5``."""
    if isinstance(status, str):
        last = status.rpartition(" ")[2]
        if last.isdigit() and " " in status:
            return int(last)
    return -1


def _len_rows(_: Any, result: Any) -> int:
    return len(result) if isinstance(result, list) else -1


def _row_rows(_: Any, result: Any) -> int:
    return 0 if result is None else 1


class AsyncpgSession:
    """A side :class:`ats.side.Session` over asyncpg, on its own event loop in the worker thread."""

    dialect = DIALECT

    def __init__(self, params: dict[str, Any]) -> None:
        # Here, not at module level: every program ATS starts in loads this plugin, and
        # importing asyncio costs ~20 ms of start-up to programs that never use it.
        import asyncio

        import asyncpg  # type: ignore[import-untyped]

        self.loop = asyncio.new_event_loop()
        try:
            self.conn = self.loop.run_until_complete(asyncpg.connect(**params))
        except BaseException:
            self.loop.close()
            raise

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        rows = self.loop.run_until_complete(self.conn.fetch(sql, *(params or ())))
        return [tuple(r) for r in rows]

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.conn.close())
        finally:
            self.loop.close()


def side_connector(conn: Any) -> Connector:
    """Opens a new asyncpg connection with ``conn``'s address and credentials."""
    p = conn._params
    params: dict[str, Any] = {"user": p.user, "password": p.password, "database": p.database}
    addr = conn._addr
    if isinstance(addr, tuple):
        params["host"], params["port"] = addr[0], addr[1]
    else:  # a unix socket file: <dir>/.s.PGSQL.<port>
        directory, _, name = str(addr).rpartition("/")
        params["host"], params["port"] = directory, int(name.rsplit(".", 1)[-1])
    mode = getattr(getattr(p, "sslmode", None), "name", "prefer").replace("_", "-")
    # asyncpg turns sslmode into a context: a lenient mode is passed on as the mode itself,
    # so that the side connection negotiates like the program's did.
    params["ssl"] = mode if mode in ("disable", "allow", "prefer") else p.ssl

    def connect() -> Session:
        return AsyncpgSession(params)

    return connect


def _statement_params(args: tuple[Any, ...], _kwargs: dict[str, Any]) -> Any:
    return args[1:]


_SIDE: Final = SideSpec(side_connector, _statement_params)
_CONNECTION_METHODS: Final = {
    "execute": CallSpec(QUERY, _query_text, connection_peer, _status_rows, sqlstate, side=_SIDE),
    "executemany": CallSpec(QUERY, _query_text, connection_peer, None, sqlstate),
    "fetch": CallSpec(QUERY, _query_text, connection_peer, _len_rows, sqlstate, side=_SIDE),
    "fetchval": CallSpec(QUERY, _query_text, connection_peer, None, sqlstate, side=_SIDE),
    "fetchrow": CallSpec(QUERY, _query_text, connection_peer, _row_rows, sqlstate, side=_SIDE),
    "fetchmany": CallSpec(QUERY, _query_text, connection_peer, _len_rows, sqlstate),
    "prepare": CallSpec(PREPARE, _query_text, connection_peer, None, sqlstate),
    "copy_from_query": CallSpec(QUERY, _copy_query_text, connection_peer, _status_rows, sqlstate),
    "copy_from_table": CallSpec(QUERY, _copy_table_text("TO STDOUT"), connection_peer, _status_rows, sqlstate),
    "copy_to_table": CallSpec(QUERY, _copy_table_text("FROM STDIN"), connection_peer, _status_rows, sqlstate),
    "copy_records_to_table": CallSpec(
        QUERY, _copy_table_text("FROM STDIN"), connection_peer, _status_rows, sqlstate
    ),
    "close": CallSpec(CLOSE, no_text, connection_peer, None, sqlstate),
}
_STATEMENT_METHODS: Final = {
    "fetch": CallSpec(QUERY, _prepared_text, _statement_peer, _len_rows, sqlstate),
    "fetchval": CallSpec(QUERY, _prepared_text, _statement_peer, None, sqlstate),
    "fetchrow": CallSpec(QUERY, _prepared_text, _statement_peer, _row_rows, sqlstate),
    "fetchmany": CallSpec(QUERY, _prepared_text, _statement_peer, _len_rows, sqlstate),
    "executemany": CallSpec(QUERY, _prepared_text, _statement_peer, None, sqlstate),
}


def _make_connect(original: Any) -> Any:
    async def _connect(*args: Any, **kwargs: Any) -> Any:
        rt = recorder.runtime()
        if rt is None:
            return await original(*args, **kwargs)
        start = _now()
        try:
            conn = await original(*args, **kwargs)
        except BaseException as exc:
            try:
                peer = _kwargs_peer(kwargs)
            except Exception as peer_exc:
                count_error(f"{COMPONENT}.peer", peer_exc)
                peer = NO_PEER
            recorder.error(rt, HANDSHAKE, None, start, peer, exc, sqlstate(exc))
            raise
        try:
            peer = connection_peer(conn)
        except Exception as exc:
            count_error(f"{COMPONENT}.peer", exc)
            peer = NO_PEER
        recorder.ok(rt, HANDSHAKE, None, start, peer)
        discover_capabilities(recorder, rt, peer, _SIDE, conn)
        return conn

    _connect.__name__ = _connect.__qualname__ = getattr(original, "__name__", "_connect")
    _connect.__wrapped__ = original  # type: ignore[attr-defined]
    return _connect


class AsyncpgInstrumentor(Instrumentor):
    """Patches asyncpg's connect path and its Connection / PreparedStatement methods."""

    name = "asyncpg"
    target_modules = ("asyncpg",)
    supported_versions = ">=0.29,<0.33"

    def _patch(self, module: ModuleType) -> None:
        from asyncpg import connect_utils, connection, prepared_stmt

        recorder.bind()
        self.replace(connect_utils, "_connect", _make_connect(connect_utils._connect))
        for cls, methods in (
            (connection.Connection, _CONNECTION_METHODS),
            (prepared_stmt.PreparedStatement, _STATEMENT_METHODS),
        ):
            for name, spec in methods.items():
                original = vars(cls).get(name)
                if original is not None:  # methods differ slightly across versions
                    self.replace(cls, name, wrap_async(recorder, original, spec))

    def _unpatch(self, module: ModuleType) -> None:
        self.restore(module)
        recorder.unbind()


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = AsyncpgInstrumentor()


# --------------------------------------------------------------------------- pool levels


def _pool_name(pool: Any) -> str:
    kw = getattr(pool, "_connect_kwargs", None) or {}
    host, port, database = kw.get("host"), kw.get("port"), kw.get("database")
    if host is None and database is None:
        return f"asyncpg-pool-{id(pool):x}"
    return f"{host or ''}:{port or ''}/{database or ''}"


def _publish_pool(pool: Any) -> None:
    if recorder.runtime() is None:
        return
    try:
        size, idle = int(pool.get_size()), int(pool.get_idle_size())
        publish_pool_levels(DIALECT, _pool_name(pool), max(0, size - idle), idle)
    except Exception as exc:
        count_error("asyncpg.pool_levels", exc)


class AsyncpgPoolInstrumentor(Instrumentor):
    """Publishes asyncpg pool levels (``sqlx_pool_active``/``sqlx_pool_idle``,
    ``db.client.connection.count``) after every acquire and release."""

    name = "asyncpg.pool"
    target_modules = ("asyncpg",)
    supported_versions = ">=0.29,<0.33"

    def _patch(self, module: ModuleType) -> None:
        from asyncpg import pool

        recorder.bind()
        for method in ("_acquire", "release"):
            self.replace(pool.Pool, method, after_call_async(vars(pool.Pool)[method], _publish_pool))

    def _unpatch(self, module: ModuleType) -> None:
        self.restore(module)


pool_instrumentor: Final = AsyncpgPoolInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the asyncpg connection and pool instrumentors to the ATS plugin host."""
    return [instrumentor, pool_instrumentor]
