"""ATS plugin: instrumentation of PyMySQL (MySQL and MariaDB).

PyMySQL is pure Python: its ``Connection`` and ``Cursor`` classes are patched in place (no proxy),
so every cursor class (``DictCursor``, ``SSCursor``, ...), ``pymysql.connect`` /
``from pymysql import connect`` (an alias of the class) and reconnections are covered.

* ``Connection.connect`` (called by ``__init__`` and by ``ping(reconnect=True)``) ->
  ``driver.handshake``
* ``Cursor.execute`` / ``executemany`` / ``callproc`` -> ``driver.query``; ``executemany``
  is one span even when PyMySQL splits it into several multi-row INSERTs or loops over
  ``execute`` (the statement recorded is the program's template, never the interpolated text)
* ``Connection.begin`` / ``commit`` / ``rollback`` -> ``driver.query`` with statement
  ``BEGIN`` / ``COMMIT`` / ``ROLLBACK``
* ``Connection.close`` -> ``driver.close``

A failure records the span with status error, ``error.type`` = the PyMySQL exception class
(``ProgrammingError``, ``IntegrityError``, ...) and ``db.response.status_code`` = the SQLSTATE
of the server's error packet.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Final

from ats import hookimpl
from ats.drivers import (
    CLOSE,
    HANDSHAKE,
    QUERY,
    CallSpec,
    DriverRecorder,
    Peer,
    cursor_rowcount,
    fixed_text,
    no_text,
    sqlstate_from,
    statement_text,
    wrap_sync,
)
from ats.instrumentation import Instrumentor
from ats.side import Connector, DbapiSession, Session, SideSpec

__all__ = ["PyMySQLInstrumentor", "ats_instrumentors", "instrumentor", "recorder"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-pymysql"
DIALECT: Final = "mysql"

recorder: Final = DriverRecorder(COMPONENT, DIALECT)
sqlstate: Final = sqlstate_from("sqlstate")


def connection_peer(conn: Any) -> Peer:
    db = conn.db
    if isinstance(db, (bytes, bytearray)):
        db = db.decode("utf-8", "replace")
    if conn.unix_socket:
        return Peer(str(conn.unix_socket), 0, db or "")
    return Peer(str(conn.host), int(conn.port), db or "")


def _cursor_peer(cur: Any) -> Peer:
    return connection_peer(cur.connection)


def _query_text(_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    return statement_text(args[0] if args else kwargs.get("query"))


def _callproc_text(_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    name = args[0] if args else kwargs.get("procname")
    return f"CALL {name}()" if isinstance(name, str) else None


def _text(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value


def side_connector(conn: Any) -> Connector:
    """Opens a new autocommit connection with ``conn``'s parameters (plans, capabilities)."""
    params: dict[str, Any] = {
        "user": _text(conn.user), "password": conn.password, "database": _text(conn.db),
        "charset": conn.charset, "connect_timeout": conn.connect_timeout, "autocommit": True,
    }  # fmt: skip
    if conn.unix_socket:
        params["unix_socket"] = conn.unix_socket
    else:
        params["host"], params["port"] = conn.host, conn.port

    def connect() -> Session:
        import pymysql

        return DbapiSession(pymysql.connect(**params), DIALECT)

    return connect


def _statement_params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("args")


_CURSOR_SIDE: Final = SideSpec(lambda cur: side_connector(cur.connection), _statement_params)
_EXECUTE: Final = CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate, side=_CURSOR_SIDE)
_EXECUTEMANY: Final = CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate)
_CALLPROC: Final = CallSpec(QUERY, _callproc_text, _cursor_peer, cursor_rowcount, sqlstate)
_HANDSHAKE: Final = CallSpec(
    HANDSHAKE, no_text, connection_peer, None, sqlstate, side=SideSpec(side_connector, _statement_params)
)
_CONNECTION_METHODS: Final = {
    "begin": CallSpec(QUERY, fixed_text("BEGIN"), connection_peer, None, sqlstate),
    "commit": CallSpec(QUERY, fixed_text("COMMIT"), connection_peer, None, sqlstate),
    "rollback": CallSpec(QUERY, fixed_text("ROLLBACK"), connection_peer, None, sqlstate),
    "close": CallSpec(CLOSE, no_text, connection_peer, None, sqlstate),
}

# Set on a cursor while its executemany() runs: the execute() calls PyMySQL makes inside
# belong to the batch's single span.
_IN_BATCH: Final = "_ats_in_batch"


def _make_execute(original: Any) -> Any:
    recorded = wrap_sync(recorder, original, _EXECUTE)

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get(_IN_BATCH):
            return original(self, *args, **kwargs)
        return recorded(self, *args, **kwargs)

    execute.__name__ = execute.__qualname__ = "execute"
    execute.__doc__ = original.__doc__
    execute.__wrapped__ = original  # type: ignore[attr-defined]
    return execute


def _make_executemany(original: Any) -> Any:
    recorded = wrap_sync(recorder, original, _EXECUTEMANY)

    def executemany(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.__dict__[_IN_BATCH] = True
        try:
            return recorded(self, *args, **kwargs)
        finally:
            self.__dict__.pop(_IN_BATCH, None)

    executemany.__name__ = executemany.__qualname__ = "executemany"
    executemany.__doc__ = original.__doc__
    executemany.__wrapped__ = original  # type: ignore[attr-defined]
    return executemany


class PyMySQLInstrumentor(Instrumentor):
    """Patches PyMySQL's ``Connection`` and ``Cursor`` methods in place."""

    name = "pymysql"
    target_modules = ("pymysql",)
    supported_versions = ">=1.0,<2"
    # pymysql.__version__ is the MySQLdb-compatible "2.2.x", not the package's version.
    distribution = "PyMySQL"

    def target_version(self, module: ModuleType) -> str | None:
        version = getattr(module, "VERSION", None)
        if isinstance(version, tuple) and len(version) >= 3:
            return ".".join(str(part) for part in version[:3])
        return super().target_version(module)

    def _patch(self, module: ModuleType) -> None:
        from pymysql import connections, cursors

        recorder.bind()
        conn_cls = connections.Connection
        self.replace(conn_cls, "connect", wrap_sync(recorder, vars(conn_cls)["connect"], _HANDSHAKE))
        for name, spec in _CONNECTION_METHODS.items():
            self.replace(conn_cls, name, wrap_sync(recorder, vars(conn_cls)[name], spec))
        cur_cls = cursors.Cursor
        self.replace(cur_cls, "execute", _make_execute(vars(cur_cls)["execute"]))
        self.replace(cur_cls, "executemany", _make_executemany(vars(cur_cls)["executemany"]))
        self.replace(cur_cls, "callproc", wrap_sync(recorder, vars(cur_cls)["callproc"], _CALLPROC))

    def _unpatch(self, module: ModuleType) -> None:
        self.restore(module)
        recorder.unbind()


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = PyMySQLInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the PyMySQL instrumentor to the ATS plugin host."""
    return [instrumentor]
