"""The ats-sqlite3 plugin against a fake runtime that records every ``driver_call``.

The end-to-end tests with the real native pipeline are in test_sqlite3_e2e.py, and so are the
checks that sqlite3's own extension points (backup, functions, aggregates, collations, iterdump,
row and text factories, transactions) keep working under the native tracers that ship.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import ats
import ats_sqlite3
from ats import instrumentation
from ats.instrumentation import UnsupportedVersionWarning, instrumentation_errors

import ats as _ats_for_path

# Where the *installed* ats lives (site-packages in CI, python/ in an editable install):
# subprocesses must import the built package, not the source tree.
ATS_ROOT = str(Path(_ats_for_path.__file__).resolve().parent.parent)

REPO = Path(__file__).resolve().parent.parent
ORIGINAL_CONNECT = sqlite3.connect

HANDSHAKE, QUERY, CLOSE = 0, 1, 3


@dataclass(frozen=True)
class SpanContext:
    trace_id: str
    span_id: int
    sampled: bool
    remote: bool = False


@dataclass
class FakePipeline:
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    # The exact signature of ats._native.Pipeline.record_query (issue 3 contract).
    def record_query(
        self,
        op: int,
        dialect: str,
        sql: str | None,
        start_ns: int,
        end_ns: int,
        error_type: str | None = None,
        trace_id: str | None = None,
        parent_span_id: int = 0,
        parent_sampled: bool = True,
        component: str = "",
        peer_name: str = "",
        peer_port: int = 0,
        db_namespace: str = "",
        rows: int = -1,
    ) -> int:
        if self.fail:
            raise RuntimeError("bug in the recorder")
        self.calls.append(
            {
                "op": op,
                "dialect": dialect,
                "sql": sql,
                "start_ns": start_ns,
                "end_ns": end_ns,
                "error_type": error_type,
                "trace_id": trace_id,
                "parent_span_id": parent_span_id,
                "parent_sampled": parent_sampled,
                "component": component,
                "peer_name": peer_name,
                "peer_port": peer_port,
                "db_namespace": db_namespace,
                "rows": rows,
            }
        )
        return len(self.calls)

    def short(self) -> list[tuple[int, str | None, str | None, str]]:
        """(op, sql, error_type, db_namespace) of each call."""
        return [(c["op"], c["sql"], c["error_type"], c["db_namespace"]) for c in self.calls]


@dataclass
class FakeRuntime:
    pipeline: FakePipeline = field(default_factory=FakePipeline)
    span: SpanContext | None = None
    running: bool = True

    # The exact signature of ats._native.driver_call: what the native side does around
    # Pipeline.record_query (runtime and current span looked up, end stamped now).
    def driver_call(
        self,
        op: int,
        dialect: str,
        sql: str | None,
        start_ns: int,
        error_type: str | None,
        component: str,
        db_namespace: str,
        peer_name: str = "",
        peer_port: int = 0,
        rows: int = -1,
    ) -> int:
        if not self.running:
            return 0
        span = self.span
        return self.pipeline.record_query(
            op, dialect, sql, start_ns, time.time_ns(), error_type,
            None if span is None else span.trace_id, 0 if span is None else span.span_id,
            True if span is None else span.sampled, component, peer_name, peer_port, db_namespace, rows,
        )  # fmt: skip


def _module(monkeypatch: pytest.MonkeyPatch, name: str) -> types.ModuleType:
    try:
        module = __import__(name, fromlist=["_"])
    except ImportError:
        # Not merged yet: stand in for it with the contract's names.
        module = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(ats, name.rpartition(".")[2], module, raising=False)
    return module


class FakeTracer:
    """``ats._native.CallTracer`` with the same contract, recording through the plugin's
    ``_driver_call`` (looked up per call), so these tests see statements in the fake pipeline
    and can break the recorder. The native tracer itself is tested in test_call_tracer.py."""

    def __init__(self, func: Any, op: int, dialect: str, component: str, via_connection: bool,
                 on_error: Any) -> None:
        self.func, self.op, self.dialect, self.component = func, op, dialect, component
        self.via_connection, self.on_error, self.enabled = via_connection, on_error, True

    def method(self) -> Any:
        def traced(target: Any, sql: Any, *rest: Any) -> Any:
            return self._run(target, sql, lambda: self.func(target, sql, *rest))
        return traced

    def _run(self, target: Any, sql: Any, invoke: Any) -> Any:
        if not self.enabled:
            return invoke()
        start = time.time_ns()
        try:
            result = invoke()
        except BaseException as exc:
            self._record(target, sql, start, type(exc).__name__)
            raise
        self._record(target, sql, start, None)
        return result

    def _record(self, target: Any, sql: Any, start: int, error_type: str | None) -> None:
        try:
            owner = target.connection if self.via_connection else target
            ats_sqlite3._driver_call(self.op, self.dialect, sql if isinstance(sql, str) else None, start,
                                     error_type, self.component, owner._ats_db)
        except Exception as exc:
            self.on_error(exc)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntime]:
    rt = FakeRuntime()
    monkeypatch.setattr(ats._native, "driver_call", rt.driver_call)
    # Fresh classes (made on the next connect) with fake tracers; the real ones stay cached aside.
    monkeypatch.setattr(ats._native, "CallTracer", FakeTracer)
    monkeypatch.setattr(ats_sqlite3, "_cursor_classes", {})
    monkeypatch.setattr(ats_sqlite3, "_connection_classes", {})
    monkeypatch.setattr(ats_sqlite3, "_tracers", [])
    instrumentation._reset_instrumentation_errors()
    assert ats_sqlite3.instrumentor.instrument() is True
    yield rt
    assert ats_sqlite3.instrumentor.uninstrument() is True
    assert sqlite3.connect is ORIGINAL_CONNECT
    instrumentation._reset_instrumentation_errors()


def memory() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    return conn


# --------------------------------------------------------------------------- spans


def test_plugin_provides_its_instrumentor() -> None:
    assert ats_sqlite3.ats_instrumentors() == [ats_sqlite3.instrumentor]
    assert ats_sqlite3.instrumentor.name == "sqlite3"
    assert ats_sqlite3.instrumentor.target_modules == ("sqlite3",)


def test_connect_execute_close_record_one_call_each(runtime: FakeRuntime) -> None:
    before = time.time_ns()
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    conn.executescript("UPDATE t SET x = x + 1; DELETE FROM t WHERE x = 4;")
    cur = conn.cursor()
    cur.execute("SELECT x FROM t WHERE x > ?", (1,))
    assert cur.fetchall() == [(2,), (3,)]
    cur.executemany("INSERT INTO t VALUES (?)", [(7,)])
    cur.executescript("SELECT 1;")
    conn.close()
    after = time.time_ns()

    assert runtime.pipeline.short() == [
        (HANDSHAKE, None, None, ":memory:"),
        (QUERY, "CREATE TABLE t (x INTEGER)", None, ":memory:"),
        (QUERY, "INSERT INTO t VALUES (?)", None, ":memory:"),
        (QUERY, "UPDATE t SET x = x + 1; DELETE FROM t WHERE x = 4;", None, ":memory:"),
        (QUERY, "SELECT x FROM t WHERE x > ?", None, ":memory:"),
        (QUERY, "INSERT INTO t VALUES (?)", None, ":memory:"),
        (QUERY, "SELECT 1;", None, ":memory:"),
        (CLOSE, None, None, ":memory:"),
    ]
    previous_end = before
    for call in runtime.pipeline.calls:
        assert call["dialect"] == "sqlite"
        assert call["component"] == "ats-sqlite3"
        assert (call["trace_id"], call["parent_span_id"], call["parent_sampled"]) == (None, 0, True)
        assert (call["peer_name"], call["peer_port"], call["rows"]) == ("", 0, -1)
        # wall-clock nanoseconds, ordered, within the test's own window
        assert previous_end <= call["start_ns"] <= call["end_ns"] <= after
        previous_end = call["end_ns"]


def test_parent_span_comes_from_current_context(runtime: FakeRuntime) -> None:
    conn = memory()
    runtime.span = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", 0x00F067AA0BA902B7, False)
    conn.execute("SELECT 1")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT * FROM missing")
    for call in runtime.pipeline.calls[-2:]:
        assert call["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert call["parent_span_id"] == 0x00F067AA0BA902B7
        assert call["parent_sampled"] is False


def test_errors_carry_the_sqlite_error_class_and_pass_through(runtime: FakeRuntime) -> None:
    conn = memory()
    conn.execute("INSERT INTO users (name) VALUES ('ann')")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: users.name"):
        conn.execute("INSERT INTO users (name) VALUES ('ann')")
    with pytest.raises(sqlite3.OperationalError, match='near "SELEC": syntax error'):
        conn.cursor().execute("SELEC 1")
    with pytest.raises(sqlite3.ProgrammingError, match="Incorrect number of bindings"):
        conn.execute("SELECT ?", (1, 2))
    with pytest.raises(sqlite3.OperationalError, match="no such table: nope"):
        conn.executemany("INSERT INTO nope VALUES (?)", [(1,)])
    with pytest.raises(sqlite3.OperationalError, match="no such table: nope"):
        conn.executescript("SELECT 1; SELECT * FROM nope;")
    with pytest.raises(TypeError):
        conn.execute(42)  # type: ignore[arg-type]
    assert runtime.pipeline.short()[3:] == [
        (QUERY, "INSERT INTO users (name) VALUES ('ann')", "IntegrityError", ":memory:"),
        (QUERY, "SELEC 1", "OperationalError", ":memory:"),
        (QUERY, "SELECT ?", "ProgrammingError", ":memory:"),
        (QUERY, "INSERT INTO nope VALUES (?)", "OperationalError", ":memory:"),
        (QUERY, "SELECT 1; SELECT * FROM nope;", "OperationalError", ":memory:"),
        (QUERY, None, "TypeError", ":memory:"),  # not a string: no SQL recorded
    ]
    conn.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        conn.execute("SELECT 1")
    assert runtime.pipeline.short()[-1] == (QUERY, "SELECT 1", "ProgrammingError", ":memory:")


def test_connect_failure_is_a_handshake_error(runtime: FakeRuntime, tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        sqlite3.connect(str(tmp_path / "no" / "such" / "dir" / "x.db"))
    assert runtime.pipeline.short() == [(HANDSHAKE, None, "OperationalError", "x.db")]


def test_db_namespace_is_the_file_basename(runtime: FakeRuntime, tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "app.db").close()
    sqlite3.connect(f"file:{tmp_path / 'ro.db'}?mode=rwc", uri=True).close()
    sqlite3.connect("file:shared?mode=memory&cache=shared", uri=True).close()
    sqlite3.connect("").close()
    namespaces = [c["db_namespace"] for c in runtime.pipeline.calls if c["op"] == HANDSHAKE]
    assert namespaces == ["app.db", "ro.db", ":memory:", ""]


@pytest.mark.parametrize(
    ("database", "uri", "expected"),
    [
        (":memory:", False, ":memory:"),
        ("", False, ""),
        ("/srv/data/app.sqlite", False, "app.sqlite"),
        (b"/srv/data/bytes.db", False, "bytes.db"),
        (Path("rel/dir/p.db"), False, "p.db"),
        ("file:/srv/a.db?mode=ro", True, "a.db"),
        ("file:///srv/b.db", True, "b.db"),
        ("file://localhost/srv/c.db#frag", True, "c.db"),
        ("file::memory:?cache=shared", True, ":memory:"),
        ("file:mem1?mode=memory&cache=shared", True, ":memory:"),
        ("file:/srv/a.db?mode=ro", False, "a.db?mode=ro"),
        (123, False, ""),
    ],
)
def test_db_namespace(database: Any, uri: bool, expected: str) -> None:
    assert ats_sqlite3.db_namespace(database, uri) == expected


def test_no_runtime_records_nothing(runtime: FakeRuntime) -> None:
    runtime.running = False
    conn = memory()
    assert conn.execute("SELECT 2").fetchone() == (2,)
    conn.close()
    assert runtime.pipeline.calls == []


# --------------------------------------------------------------------------- compatibility


def test_instrumented_connection_is_a_real_connection(runtime: FakeRuntime) -> None:
    conn = memory()
    assert isinstance(conn, sqlite3.Connection)
    assert type(conn) is not sqlite3.Connection
    assert type(conn).__name__ == "Connection"
    cur = conn.cursor()
    assert isinstance(cur, sqlite3.Cursor)
    assert cur.connection is conn
    assert isinstance(conn.execute("SELECT 1"), sqlite3.Cursor)
    with pytest.raises(AttributeError):
        conn.some_attribute = 1  # type: ignore[attr-defined]  # like sqlite3.Connection


def test_user_connection_factory_is_kept_and_subclassed_once(runtime: FakeRuntime) -> None:
    class MyConnection(sqlite3.Connection):
        def hello(self) -> str:
            return "hi"

    a = sqlite3.connect(":memory:", factory=MyConnection)
    b = sqlite3.connect(":memory:", 5.0, 0, "DEFERRED", True, MyConnection)  # positional
    assert isinstance(a, MyConnection) and isinstance(b, MyConnection)
    assert type(a) is type(b)  # derived once, cached
    assert type(a).__name__ == "MyConnection"
    assert a.hello() == "hi"
    a.execute("SELECT 1")
    assert ats_sqlite3.connection_class_for(MyConnection) is type(a)
    assert ats_sqlite3.connection_class_for(type(a)) is type(a)
    assert runtime.pipeline.short() == [
        (HANDSHAKE, None, None, ":memory:"),
        (HANDSHAKE, None, None, ":memory:"),
        (QUERY, "SELECT 1", None, ":memory:"),
    ]


def test_user_factory_overriding_cursor_still_records_once(runtime: FakeRuntime) -> None:
    class MyCursor(sqlite3.Cursor):
        tag = "mine"

    class MyConnection(sqlite3.Connection):
        def cursor(self, factory: Any = MyCursor) -> Any:
            return super().cursor(factory)

    conn = sqlite3.connect(":memory:", factory=MyConnection)
    cur = conn.execute("SELECT 3")
    assert isinstance(cur, MyCursor)
    assert cur.fetchone() == (3,)
    cur = conn.cursor()
    assert isinstance(cur, MyCursor) and cur.tag == "mine"
    cur.execute("SELECT 4")
    conn.cursor(sqlite3.Cursor).execute("SELECT 5")
    conn.executescript("SELECT 6;")
    assert [c[1] for c in runtime.pipeline.short()] == [
        None, "SELECT 3", "SELECT 4", "SELECT 5", "SELECT 6;"
    ]


def test_user_cursor_factory(runtime: FakeRuntime) -> None:
    class MyCursor(sqlite3.Cursor):
        def first(self) -> Any:
            return self.fetchone()[0]

    conn = memory()
    cur = conn.cursor(factory=MyCursor)
    assert isinstance(cur, MyCursor)
    assert cur.execute("SELECT 5").first() == 5
    assert conn.cursor(MyCursor).__class__ is type(cur)
    assert runtime.pipeline.short()[-1] == (QUERY, "SELECT 5", None, ":memory:")


def test_none_factory_behaves_as_without_ats(runtime: FakeRuntime) -> None:
    plain = ORIGINAL_CONNECT(":memory:")
    with pytest.raises(TypeError) as without:
        plain.cursor(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as with_ats:
        memory().cursor(None)  # type: ignore[arg-type]
    assert str(with_ats.value) == str(without.value)
    with pytest.raises(TypeError) as without:
        ORIGINAL_CONNECT(":memory:", factory=None)
    with pytest.raises(TypeError) as with_ats:
        sqlite3.connect(":memory:", factory=None)
    assert str(with_ats.value) == str(without.value)


def test_callable_factories_are_left_alone(runtime: FakeRuntime) -> None:
    made: list[Any] = []

    def connection_factory(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = sqlite3.Connection(*args, **kwargs)
        made.append(conn)
        return conn

    conn = sqlite3.connect(":memory:", factory=connection_factory)
    assert type(conn) is sqlite3.Connection and made == [conn]
    cur = memory().cursor(lambda c: sqlite3.Cursor(c))
    assert type(cur) is sqlite3.Cursor
    cur.execute("SELECT 1")
    # only the instrumented connection's handshake and CREATE TABLE were recorded
    assert [c[0] for c in runtime.pipeline.short()] == [HANDSHAKE, QUERY]


def test_dbapi2_alias_is_patched_and_restored() -> None:
    original = sqlite3.dbapi2.connect
    ats_sqlite3.instrumentor.instrument()
    try:
        assert sqlite3.dbapi2.connect is not original
        assert isinstance(sqlite3.dbapi2.connect(":memory:"), ats_sqlite3.connection_class_for(sqlite3.Connection))
        assert sqlite3.connect.__wrapped__ is ORIGINAL_CONNECT  # type: ignore[attr-defined]
    finally:
        ats_sqlite3.instrumentor.uninstrument()
    assert sqlite3.dbapi2.connect is original
    assert sqlite3.connect is ORIGINAL_CONNECT


def test_uninstrument_stops_recording_on_existing_connections(runtime: FakeRuntime) -> None:
    conn = memory()
    ats_sqlite3.instrumentor.uninstrument()
    try:
        assert sqlite3.connect is ORIGINAL_CONNECT
        conn.execute("SELECT 1")
        assert type(sqlite3.connect(":memory:")) is sqlite3.Connection
        assert len(runtime.pipeline.calls) == 2  # handshake + CREATE TABLE, nothing after
    finally:
        ats_sqlite3.instrumentor.instrument()


def test_instrument_is_idempotent(runtime: FakeRuntime) -> None:
    patched = sqlite3.connect
    assert ats_sqlite3.instrumentor.instrument() is False
    assert sqlite3.connect is patched
    sqlite3.connect(":memory:")
    assert len(runtime.pipeline.calls) == 1


def test_recorder_error_never_changes_the_users_call(runtime: FakeRuntime) -> None:
    conn = memory()
    runtime.pipeline.fail = True
    assert conn.execute("SELECT 7").fetchone() == (7,)
    with pytest.raises(sqlite3.OperationalError, match="no such table: nope") as info:
        conn.execute("SELECT * FROM nope")
    assert type(info.value) is sqlite3.OperationalError
    conn.close()
    assert instrumentation_errors() == {"sqlite3.record": 3}


def test_unsupported_sqlite_library_warns_and_does_not_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.6.23")
    with pytest.warns(UnsupportedVersionWarning) as record:
        ats_sqlite3.instrumentor.instrument()
    try:
        assert [str(w.message) for w in record] == [
            "ats: sqlite3 instrumentation not applied: sqlite3 is version 3.6.23,"
            " supported >=3.7"
        ]
        assert sqlite3.connect is ORIGINAL_CONNECT
    finally:
        ats_sqlite3.instrumentor.uninstrument()


# --------------------------------------------------------------------------- loading


def test_plugin_loads_through_entry_point_and_patches_lazily() -> None:
    """First-party plugin found like a third-party one; sqlite3 patched on its first import."""
    code = """
import sys
from ats.plugins import PluginHost
host = PluginHost()
rows = {s.name: (s.distribution, s.status) for s in host.load(allowed={"sqlite3"})}
print(rows["sqlite3"])
for inst in host.instrumentors():
    inst.instrument()
print("sqlite3" in sys.modules)
import sqlite3
conn = sqlite3.connect(":memory:")
print(type(conn).__module__, isinstance(conn, sqlite3.Connection))
print(conn.execute("SELECT 40 + 2").fetchone())
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ATS_ROOT, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "('ats-sqlite3', 'active')",
        "False",
        "ats_sqlite3 True",
        "(42,)",
    ]


def test_broken_native_recorder_never_changes_the_users_call(
    runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = memory()

    def broken(*_args: Any) -> int:
        raise LookupError("context broken")

    monkeypatch.setattr(ats_sqlite3, "_driver_call", broken)
    assert conn.execute("SELECT 8").fetchone() == (8,)
    assert conn.cursor().execute("SELECT 9").fetchone() == (9,)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT * FROM nope")
    assert instrumentation_errors() == {"sqlite3.record": 3}
    assert len(runtime.pipeline.calls) == 2  # handshake + CREATE TABLE from before
