"""ATS plugin: instrumentation of psycopg2 (connections, cursors, ``psycopg2.pool``, extras).

psycopg2's connection and cursor are C types, so they are instrumented through psycopg2's own
extension points, never through proxies: the patched ``psycopg2.connect`` (which
``psycopg2.pool`` and ``from psycopg2 import connect`` use) passes ``connection_factory=`` a
subclass of the connection class (of the caller's factory if given, e.g.
``extras.RealDictConnection``, derived once per class), whose ``cursor()`` hands psycopg2 a
subclass of the cursor class (``extras.DictCursor`` and the like included).  Objects stay real
psycopg2 objects, so ``extras.register_*``, ``extensions.*`` and C-level type checks work.

* connect -> ``driver.handshake``
* ``execute`` / ``executemany`` / ``callproc`` / ``copy_expert`` / ``copy_from`` / ``copy_to``
  -> ``driver.query``
* ``commit`` / ``rollback`` -> ``driver.query`` with statement ``COMMIT`` / ``ROLLBACK`` (the
  commit psycopg2 itself does at the end of ``with conn:`` runs in C and is not seen)
* ``close`` -> ``driver.close``

A failure records the span with status error, ``error.type`` = the psycopg2 exception class
(``psycopg2.errors.UndefinedTable``, ...) and ``db.response.status_code`` = ``pgcode``.
"""

from __future__ import annotations

import functools
from time import time_ns as _now
from types import ModuleType
from typing import Any, Final

from ats import hookimpl
from ats.drivers import (
    CLOSE,
    HANDSHAKE,
    NO_PEER,
    QUERY,
    CallSpec,
    DriverRecorder,
    Peer,
    SubclassCache,
    cursor_rowcount,
    discover_capabilities,
    fixed_text,
    no_text,
    sqlstate_from,
    statement_text,
    wrap_sync,
)
from ats.instrumentation import Instrumentor, count_error
from ats.side import Connector, DbapiSession, Session, SideSpec

__all__ = ["Psycopg2Instrumentor", "ats_instrumentors", "instrumentor", "recorder"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-psycopg2"
DIALECT: Final = "postgresql"

recorder: Final = DriverRecorder(COMPONENT, DIALECT)
sqlstate: Final = sqlstate_from("pgcode")


def _dsn_peer(dsn: object) -> Peer:
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(dsn) if isinstance(dsn, str) else {}
    port = str(params.get("port") or "5432").split(",")[0]
    return Peer(
        str(params.get("host") or "").split(",")[0],
        int(port) if port.isdigit() else 0,
        str(params.get("dbname") or ""),
    )


def _info_peer(conn: Any) -> Peer:
    info = conn.info
    return Peer(info.host or "", int(info.port or 0), info.dbname or "")


def _connection_peer(conn: Any) -> Peer:
    peer: Peer = getattr(conn, "_ats_peer", NO_PEER)
    return peer


def _cursor_peer(cur: Any) -> Peer:
    return _connection_peer(cur.connection)


def _query_text(cur: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    query = args[0] if args else kwargs.get("query", kwargs.get("sql"))
    text = statement_text(query)
    if text is None and hasattr(query, "as_string"):  # psycopg2.sql.Composable
        text = query.as_string(cur)
    return text


def _callproc_text(cur: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    name = args[0] if args else kwargs.get("procname")
    return f"SELECT * FROM {name}()" if isinstance(name, str) else None


def _copy_from_text(cur: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    table = args[1] if len(args) > 1 else kwargs.get("table")
    return f"COPY {table} FROM STDIN" if isinstance(table, str) else None


def _copy_to_text(cur: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    table = args[1] if len(args) > 1 else kwargs.get("table")
    return f"COPY {table} TO STDOUT" if isinstance(table, str) else None


def side_connector(conn: Any) -> Connector:
    """Opens a new autocommit connection with ``conn``'s parameters (plans, capabilities)."""
    params = {k: v for k, v in conn.info.dsn_parameters.items() if v}
    password = conn.info.password
    if password:
        params["password"] = password

    def connect() -> Session:
        import psycopg2

        side_conn = psycopg2.connect(**params)
        side_conn.autocommit = True
        return DbapiSession(side_conn, DIALECT)

    return connect


def _statement_params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("vars")


_CURSOR_SIDE: Final = SideSpec(lambda cur: side_connector(cur.connection), _statement_params)
_CONN_SIDE: Final = SideSpec(side_connector, _statement_params)

_CURSOR_METHODS: Final = {
    "execute": CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate, side=_CURSOR_SIDE),
    "executemany": CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate),
    "callproc": CallSpec(QUERY, _callproc_text, _cursor_peer, cursor_rowcount, sqlstate),
    "copy_expert": CallSpec(QUERY, _query_text, _cursor_peer, cursor_rowcount, sqlstate),
    "copy_from": CallSpec(QUERY, _copy_from_text, _cursor_peer, cursor_rowcount, sqlstate),
    "copy_to": CallSpec(QUERY, _copy_to_text, _cursor_peer, cursor_rowcount, sqlstate),
}
def in_transaction(conn: Any) -> bool:
    """Whether commit()/rollback() will talk to the server (psycopg2 skips them when idle)."""
    return bool(conn.info.transaction_status != 0)  # 0: TRANSACTION_STATUS_IDLE


_CONNECTION_METHODS: Final = {
    "commit": CallSpec(QUERY, fixed_text("COMMIT"), _connection_peer, None, sqlstate, in_transaction),
    "rollback": CallSpec(QUERY, fixed_text("ROLLBACK"), _connection_peer, None, sqlstate, in_transaction),
    "close": CallSpec(CLOSE, no_text, _connection_peer, None, sqlstate),
}


# --------------------------------------------------------------------------- classes


def _make_cursor_class(base: type) -> type:
    namespace: dict[str, Any] = {"__slots__": (), "_ats_instrumented": True, "__doc__": base.__doc__}
    for name, spec in _CURSOR_METHODS.items():
        namespace[name] = wrap_sync(recorder, getattr(base, name), spec)
    cls = type(base.__name__, (base,), namespace)
    cls.__qualname__ = base.__qualname__
    cls.__module__ = base.__module__
    return cls


def _cursor_root() -> type:
    from psycopg2.extensions import cursor

    return cursor


def _connection_root() -> type:
    from psycopg2.extensions import connection

    return connection


cursor_classes: Final = SubclassCache(_cursor_root, _make_cursor_class)


def _adopt_cursor(cur: Any) -> Any:
    """Give a cursor made by an overriding ``cursor()`` its instrumented class (same layout)."""
    try:
        target = cursor_classes.get(type(cur))
        if target is not type(cur):
            cur.__class__ = target
    except Exception as exc:  # e.g. the C cursor type itself: its __class__ is not assignable
        count_error(f"{COMPONENT}.cursor", exc)
    return cur


def _make_connection_class(base: type) -> type:
    base_init = base.__init__
    base_cursor = base.cursor
    cursor_overridden = base.cursor is not _connection_root().cursor

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        rt = recorder.runtime()
        if rt is None:
            self._ats_peer = NO_PEER
            base_init(self, *args, **kwargs)
            return
        start = _now()
        try:
            base_init(self, *args, **kwargs)
        except BaseException as exc:
            try:
                peer = _dsn_peer(args[0] if args else kwargs.get("dsn"))
            except Exception as peer_exc:
                count_error(f"{COMPONENT}.peer", peer_exc)
                peer = NO_PEER
            recorder.error(rt, HANDSHAKE, None, start, peer, exc, sqlstate(exc))
            raise
        try:
            self._ats_peer = _info_peer(self)
        except Exception as exc:
            count_error(f"{COMPONENT}.peer", exc)
            self._ats_peer = NO_PEER
        recorder.ok(rt, HANDSHAKE, None, start, self._ats_peer)
        discover_capabilities(recorder, rt, self._ats_peer, _CONN_SIDE, self)

    def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
        # cursor(name=None, cursor_factory=None, scrollable=None, withhold=False)
        try:
            if len(args) > 1:
                args = (args[0], cursor_classes.get(args[1]), *args[2:])
            elif kwargs.get("cursor_factory") is not None:
                kwargs["cursor_factory"] = cursor_classes.get(kwargs["cursor_factory"])
            elif not cursor_overridden:
                kwargs["cursor_factory"] = cursor_classes.get(self.cursor_factory or _cursor_root())
            else:  # the base picks its own default (DictConnection -> DictCursor)
                return _adopt_cursor(base_cursor(self, *args, **kwargs))
        except Exception as exc:
            count_error(f"{COMPONENT}.cursor", exc)
        return base_cursor(self, *args, **kwargs)

    namespace: dict[str, Any] = {
        # A slot, not a __dict__: psycopg2's connection has none.
        "__slots__": () if "_ats_peer" in getattr(base, "__slots__", ()) else ("_ats_peer",),
        "_ats_instrumented": True,
        "__doc__": base.__doc__,
        "__init__": __init__,
        "cursor": cursor,
    }
    for name, spec in _CONNECTION_METHODS.items():
        namespace[name] = wrap_sync(recorder, getattr(base, name), spec)
    cls = type(base.__name__, (base,), namespace)
    cls.__qualname__ = base.__qualname__
    cls.__module__ = base.__module__
    return cls


connection_classes: Final = SubclassCache(_connection_root, _make_connection_class)


# --------------------------------------------------------------------------- instrumentor


def _make_connect(original: Any) -> Any:
    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        # connect(dsn=None, connection_factory=None, cursor_factory=None, **kwargs)
        try:
            if len(args) > 1:
                args = (args[0], connection_classes.get(args[1]), *args[2:])
            else:
                kwargs["connection_factory"] = connection_classes.get(
                    kwargs.get("connection_factory") or _connection_root()
                )
        except Exception as exc:
            count_error(f"{COMPONENT}.connect", exc)
        return original(*args, **kwargs)

    connect._ats_instrumented = True  # type: ignore[attr-defined]
    return connect


class Psycopg2Instrumentor(Instrumentor):
    """Patches ``psycopg2.connect`` to hand psycopg2 instrumented connection classes."""

    name = "psycopg2"
    target_modules = ("psycopg2",)
    supported_versions = ">=2.8,<3"

    def _patch(self, module: ModuleType) -> None:
        recorder.bind()
        self.replace(module, "connect", _make_connect(module.connect))

    def _unpatch(self, module: ModuleType) -> None:
        # Connections made while instrumented keep their (ordinary psycopg2) subclasses but
        # record nothing any more.
        self.restore(module)
        recorder.unbind()


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = Psycopg2Instrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the psycopg2 instrumentor to the ATS plugin host."""
    return [instrumentor]
