"""ATS plugin: instrumentation of the standard library ``sqlite3`` module.

sqlite3 is instrumented through its own extension points, never through proxies: the patched
``sqlite3.connect`` passes ``factory=`` a subclass of :class:`sqlite3.Connection` (or of the
factory the caller gave, derived once per class and cached) whose ``cursor()`` defaults to a
subclass of :class:`sqlite3.Cursor`.  Objects stay real sqlite3 objects, so C-level type
checks (``backup``, ``sqlite3.Row``), ``create_function``, ``iterdump`` and ``isinstance`` keep
working.

Spans, one per call and one native call each (``ats._native.CallTracer`` for statements: it times
the C method, calls it and records; ``ats._native.driver_call`` for connect and close):

* ``connect`` -> ``driver.handshake``
* ``execute`` / ``executemany`` / ``executescript`` (cursor or connection) -> ``driver.query``
* ``close`` -> ``driver.close``
* a failing call -> the same span with status error and ``error.type`` = the sqlite3
  exception class (``OperationalError``, ``IntegrityError``, ...).

``Connection.execute*`` are the documented shortcuts "create a cursor, call its method": they
are implemented that way here, so each statement is recorded once, by the cursor, on every
Python version.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from ats import hookimpl
from ats.instrumentation import Instrumentor, count_error

if TYPE_CHECKING:
    # Not imported at run time: loading the plugin must not import sqlite3 (it is patched
    # lazily, when the program imports it).
    import sqlite3

__all__ = ["Sqlite3Instrumentor", "ats_instrumentors", "instrumentor"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-sqlite3"
DIALECT: Final = "sqlite"

# record_query operation codes (contract: 0 handshake, 1 query, 2 prepare, 3 close)
_HANDSHAKE: Final = 0
_QUERY: Final = 1
_CLOSE: Final = 3

_time_ns = time.time_ns

def _no_record(*_args: Any) -> int:
    return 0


# ``ats._native.driver_call`` while instrumented: one native call per database call finds the
# current span, stamps the end time and records (nothing while ATS is not running or inside
# ``ats._runtime.suppressed()``).  Uninstrumented: a no-op, so connections made while
# instrumented (they stay instances of the subclasses) record nothing any more.
_driver_call: Callable[..., int] = _no_record


def _record_failure(op: int, sql: object, start: int, exc: BaseException, conn: Any) -> None:
    """Record one failed call (the caller re-raises ``exc`` untouched); never raises."""
    try:
        _driver_call(op, DIALECT, sql if isinstance(sql, str) else None, start, type(exc).__name__,
                     COMPONENT, getattr(conn, "_ats_db", ""))
    except Exception as record_exc:
        count_error("sqlite3.record", record_exc)


def _on_record_error(exc: BaseException) -> None:
    count_error("sqlite3.record", exc)


class _Passthrough:
    """Stands in for ``ats._native.CallTracer`` when the native module is missing: no recording."""

    __slots__ = ("func", "enabled")

    def __init__(self, func: Callable[..., Any], *_args: Any) -> None:
        self.func = func
        self.enabled = False

    def method(self) -> Callable[..., Any]:
        return self.func


#: Every tracer made (one per wrapped C method per class): switched off by uninstrument, on again
#: by instrument, so objects made while instrumented keep their methods but stop recording.
_tracers: list[Any] = []
_tracing = False


def _tracer(func: Callable[..., Any], via_connection: bool) -> Any:
    """``func`` (a C method of a sqlite3 class) as a traced query: its ``method()``, called as
    ``(target, sql, ...)`` or placed in a class body, times it, records it (the database namespace
    read from ``target`` or, for a cursor, its connection) and returns its result or re-raises its
    exception (``ats._native.CallTracer``)."""
    tracer_class = getattr(_optional_module("ats._native"), "CallTracer", _Passthrough)
    tracer = tracer_class(func, _QUERY, DIALECT, COMPONENT, via_connection, _on_record_error)
    tracer.enabled = _tracing and tracer_class is not _Passthrough
    with _classes_lock:
        _tracers.append(tracer)
    return tracer


def _set_tracing(on: bool) -> None:
    global _tracing
    with _classes_lock:
        _tracing = on
        for tracer in _tracers:
            if not isinstance(tracer, _Passthrough):
                tracer.enabled = on


def db_namespace(database: object, uri: object = False) -> str:
    """``db.namespace`` for a connection: the database file's basename, or ``":memory:"``.

    Only the basename is kept (directories can name users); ``""`` (SQLite's private
    temporary database) gives ``""``.
    """
    try:
        path = os.fsdecode(database)  # type: ignore[arg-type]
    except TypeError:
        return ""
    if uri and path.startswith("file:"):
        rest, _, query = path[5:].partition("?")
        rest = rest.partition("#")[0]
        if rest.startswith("//"):  # file://host/path: drop the authority
            slash = rest.find("/", 2)
            rest = rest[slash:] if slash >= 0 else ""
        if "mode=memory" in query.split("#")[0].split("&"):
            return ":memory:"
        path = rest
    if path == ":memory:" or not path:
        return path
    return os.path.basename(path.rstrip("/")) or path


# --------------------------------------------------------------------------- classes

_classes_lock = threading.RLock()  # class creation nests (connection -> cursor)
_cursor_classes: dict[type, type] = {}
_connection_classes: dict[type, type] = {}


def _make_cursor_class(base: type[sqlite3.Cursor]) -> type[sqlite3.Cursor]:
    class Cursor(base):  # type: ignore[valid-type,misc]
        # No __dict__, like sqlite3.Cursor: same layout, so __class__ can be assigned too.
        __slots__ = ()
        _ats_instrumented: Final = True

        # Native method descriptors, not Python functions: ``cursor.execute(sql, params)`` goes
        # straight to the tracer (timing, the base's C method, recording) with no Python frame,
        # the hot path the sqlite3 overhead benchmark measures.
        execute = _tracer(base.execute, True).method()
        executemany = _tracer(base.executemany, True).method()
        executescript = _tracer(base.executescript, True).method()

    Cursor.__name__ = base.__name__
    Cursor.__qualname__ = base.__qualname__
    Cursor.__doc__ = base.__doc__
    return Cursor


def _make_connection_class(base: type[sqlite3.Connection]) -> type[sqlite3.Connection]:
    import sqlite3

    base_init = base.__init__
    base_cursor = base.cursor
    base_close = base.close
    default_cursor = cursor_class_for(sqlite3.Cursor)
    # The C methods under the instrumented default cursor's overrides, traced.
    cursor_execute = _tracer(sqlite3.Cursor.execute, True).method()
    cursor_executemany = _tracer(sqlite3.Cursor.executemany, True).method()
    cursor_executescript = _tracer(sqlite3.Cursor.executescript, True).method()

    def _new_cursor(conn: Any, sql: object) -> Any:
        """The C cursor() (a closed connection fails here: recorded as the failed query)."""
        start = _time_ns()
        try:
            return base_cursor(conn, default_cursor)
        except BaseException as exc:
            _record_failure(_QUERY, sql, start, exc, conn)
            raise

    class Connection(base):  # type: ignore[valid-type,misc]
        # Slots, not a __dict__: sqlite3.Connection has none and users cannot tell. A weak
        # reference lets the native tracer remember the connection's namespace without keeping
        # it alive (unless the caller's class already has one).
        __slots__ = ("_ats_db",) if base.__weakrefoffset__ else ("_ats_db", "__weakref__")
        _ats_instrumented: Final = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                database = args[0] if args else kwargs.get("database", "")
                uri = args[7] if len(args) > 7 else kwargs.get("uri", False)
                self._ats_db = db_namespace(database, uri)
            except Exception as exc:
                self._ats_db = ""
                count_error("sqlite3.connect", exc)
            start = _time_ns()
            try:
                base_init(self, *args, **kwargs)
            except BaseException as exc:
                _record_failure(_HANDSHAKE, None, start, exc, self)
                raise
            try:
                _driver_call(_HANDSHAKE, DIALECT, None, start, None, COMPONENT, self._ats_db)
            except Exception as exc:
                count_error("sqlite3.record", exc)

        def cursor(self, factory: Any = default_cursor) -> Any:
            if factory is not default_cursor:
                factory = cursor_class_for(factory)
            return base_cursor(self, factory)

        # The shortcuts create a cursor exactly as the C implementation does (through the C
        # cursor(), which also applies the row factory) and run the statement on it; the
        # statement is recorded here, once, without a second Python frame.  (A base class
        # that overrides cursor() gets delegating versions below.)
        # ``*args``: the C method checks the arguments, so a wrong call fails with exactly the
        # TypeError it gives without ATS (and is recorded as the failed statement).
        def execute(self, *args: Any) -> Any:
            cur = _new_cursor(self, args[0] if args else None)
            cursor_execute(cur, *args)
            return cur

        def executemany(self, *args: Any) -> Any:
            cur = _new_cursor(self, args[0] if args else None)
            cursor_executemany(cur, *args)
            return cur

        def executescript(self, *args: Any) -> Any:
            cur = _new_cursor(self, args[0] if args else None)
            cursor_executescript(cur, *args)
            return cur

        def close(self) -> None:
            start = _time_ns()
            try:
                base_close(self)
            except BaseException as exc:
                _record_failure(_CLOSE, None, start, exc, self)
                raise
            try:
                _driver_call(_CLOSE, DIALECT, None, start, None, COMPONENT, self._ats_db)
            except Exception as exc:
                count_error("sqlite3.record", exc)

    if base.cursor is not sqlite3.Connection.cursor:
        # The caller's factory overrides cursor() (typically to default to its own cursor
        # class): keep that choice and instrument whatever cursor it returns.
        def cursor(self: Any, *args: Any, **kwargs: Any) -> Any:
            if args:
                args = (cursor_class_for(args[0]), *args[1:])
            elif "factory" in kwargs:
                kwargs["factory"] = cursor_class_for(kwargs["factory"])
            return _adopt_cursor(base_cursor(self, *args, **kwargs))

        def execute(self: Any, *args: Any) -> Any:
            return self.cursor().execute(*args)

        def executemany(self: Any, *args: Any) -> Any:
            return self.cursor().executemany(*args)

        def executescript(self: Any, *args: Any) -> Any:
            return self.cursor().executescript(*args)

        for method in (cursor, execute, executemany, executescript):
            method.__qualname__ = f"Connection.{method.__name__}"
            setattr(Connection, method.__name__, method)

    Connection.__name__ = base.__name__
    Connection.__qualname__ = base.__qualname__
    Connection.__doc__ = base.__doc__
    return Connection


def _adopt_cursor(cur: Any) -> Any:
    """Give a cursor made by someone else's cursor() its instrumented class.

    The derived class adds methods only (``__slots__ = ()``), so the object layout is the same
    and ``__class__`` assignment is allowed; the object stays the caller's, with its state.
    """
    cls = type(cur)
    if getattr(cls, "_ats_instrumented", False):
        return cur
    try:
        target = cursor_class_for(cls)
        if target is not cls:
            cur.__class__ = target
    except Exception as exc:  # e.g. a cursor class with an incompatible layout
        count_error("sqlite3.cursor", exc)
    return cur


def _derived(factory: Any, root: type, cache: dict[type, type], make: Any) -> Any:
    if not isinstance(factory, type) or not issubclass(factory, root):
        # Any other callable (or None): passed on as-is, so sqlite3 behaves exactly as without
        # ATS; what it makes is not instrumented (a function cannot be subclassed).
        return factory
    if getattr(factory, "_ats_instrumented", False):
        return factory
    derived = cache.get(factory)
    if derived is None:
        with _classes_lock:
            derived = cache.get(factory)
            if derived is None:
                derived = cache[factory] = make(factory)
    return derived


def _connection_root() -> Any:
    import sqlite3

    return sqlite3.Connection


def cursor_class_for(factory: Any) -> Any:
    """The instrumented cursor class for a cursor ``factory`` class (else ``factory`` itself)."""
    import sqlite3

    return _derived(factory, sqlite3.Cursor, _cursor_classes, _make_cursor_class)


def connection_class_for(factory: Any) -> Any:
    """The instrumented connection class for a connection ``factory`` class (else ``factory``)."""
    import sqlite3

    return _derived(factory, sqlite3.Connection, _connection_classes, _make_connection_class)


# --------------------------------------------------------------------------- instrumentor

# sqlite3.connect(database, timeout, detect_types, isolation_level, check_same_thread, factory, ...)
_FACTORY_POSITION: Final = 5


def _make_connect(original: Any) -> Any:
    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        try:
            if len(args) > _FACTORY_POSITION:
                factory = connection_class_for(args[_FACTORY_POSITION])
                args = (*args[:_FACTORY_POSITION], factory, *args[_FACTORY_POSITION + 1 :])
            else:
                kwargs["factory"] = connection_class_for(kwargs.get("factory", _connection_root()))
        except Exception as exc:
            count_error("sqlite3.connect", exc)
        return original(*args, **kwargs)

    connect._ats_instrumented = True  # type: ignore[attr-defined]
    return connect


class Sqlite3Instrumentor(Instrumentor):
    """Patches ``sqlite3.connect`` (and its ``sqlite3.dbapi2`` alias)."""

    name = "sqlite3"
    target_modules = ("sqlite3",)
    # The SQLite library (the C module ships with CPython >= 3.10, checked by requires-python)
    supported_versions = ">=3.7"

    def target_version(self, module: ModuleType) -> str | None:
        version = getattr(module, "sqlite_version", None)
        return version if isinstance(version, str) else None

    def _patch(self, module: ModuleType) -> None:
        global _driver_call
        _driver_call = getattr(_optional_module("ats._native"), "driver_call", _no_record)
        _set_tracing(True)
        for owner in (module, getattr(module, "dbapi2", None)):
            if owner is None:
                continue
            original = owner.connect
            if getattr(original, "_ats_instrumented", False):
                continue  # already patched (the package and its dbapi2 alias share one)
            self.replace(owner, "connect", _make_connect(original))

    def _unpatch(self, module: ModuleType) -> None:
        global _driver_call
        self.restore(module)
        # Connections made while instrumented stay instances of the subclasses (they are
        # ordinary sqlite3 connections) but record nothing any more.
        _driver_call = _no_record
        _set_tracing(False)


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = Sqlite3Instrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the sqlite3 instrumentor to the ATS plugin host."""
    return [instrumentor]
