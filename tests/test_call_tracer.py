"""ats._native.CallTracer: a C method made into a traced database call, against a real pipeline.

The sqlite3 plugin's statement methods are the tracer's ``method()`` placed in the class body (no
Python frame); these tests pin the contract the plugin relies on: the library's result or its very
exception comes back untouched, the call is recorded as one ``driver.query`` with the namespace
read from the target, a failure to record only reaches ``on_error``, a disabled tracer or a stopped
ATS records nothing, and the method behaves as a method (bound, named, keyword errors the
library's own).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import ats
from ats import _native

import store_reader

QUERY = 1


class Conn:
    _ats_db = "shop.db"


class Cursor:
    connection = Conn()


@pytest.fixture
def home(ats_home_no_sqlite3: Path) -> Path:
    return ats_home_no_sqlite3


def stored(home: Path) -> list[tuple[str, str, dict[str, Any]]]:
    assert ats.flush(5.0)
    rows = store_reader.connect(home / "ats.db").execute(
        "SELECT name, status, attributes FROM spans_v ORDER BY start_ns").fetchall()
    return [(n, s, json.loads(a)) for n, s, a in rows]


def tracer(func: Any, errors: list[BaseException], via_connection: bool = True) -> _native.CallTracer:
    return _native.CallTracer(func, QUERY, "sqlite", "ats-sqlite3", via_connection, errors.append)


def test_result_passes_through_and_one_span_is_recorded(home: Path) -> None:
    errors: list[BaseException] = []
    seen: list[tuple[Any, ...]] = []
    result = object()

    def execute(cur: Any, sql: str, params: Any) -> object:
        seen.append((cur, sql, params))
        return result

    cur = Cursor()
    t = tracer(execute, errors)
    assert t.method()(cur, "SELECT * FROM users WHERE email = 'ada@example.org'", (1,)) is result
    assert seen == [(cur, "SELECT * FROM users WHERE email = 'ada@example.org'", (1,))]
    ((name, status, attrs),) = stored(home)
    assert (name, status, errors) == ("driver.query", "ok", [])
    assert attrs["db.namespace"] == "shop.db"
    assert attrs["db.query.text"] == "SELECT * FROM users WHERE email = ?"


def test_the_very_exception_comes_back_and_the_span_has_its_class(home: Path) -> None:
    errors: list[BaseException] = []
    boom = sqlite3.OperationalError("no such table: nope")

    def execute(cur: Any, sql: str) -> None:
        raise boom

    with pytest.raises(sqlite3.OperationalError) as caught:
        tracer(execute, errors).method()(Cursor(), "SELECT * FROM nope")
    assert caught.value is boom
    assert caught.value.__traceback__ is not None
    ((name, status, attrs),) = stored(home)
    assert (name, status, attrs["error.type"], errors) == ("driver.query", "error", "OperationalError", [])


def test_a_failure_to_record_reaches_on_error_only(home: Path) -> None:
    errors: list[BaseException] = []

    class Bare:  # no connection, no _ats_db: recording fails
        pass

    assert tracer(lambda c, s, p: 42, errors).method()(Bare(), "SELECT 1", ()) == 42
    assert [type(e) for e in errors] == [AttributeError]
    assert stored(home) == []
    # the target itself holds the namespace (a connection's own methods)
    assert tracer(lambda c, s: 7, errors, via_connection=False).method()(Conn(), "SELECT 2") == 7
    assert [a["db.namespace"] for _, _, a in stored(home)] == ["shop.db"]


def test_disabled_or_not_running_records_nothing(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    t = tracer(lambda c, s: "r", errors)
    assert t.method()(Cursor(), "SELECT 1") == "r"  # ATS not running: passes through
    home = tmp_path / ".ats"
    assert ats.init(**{"home": str(home), "plugins.disabled": ["ats-sqlite3"]}) is not None
    try:
        t.enabled = False
        assert t.method()(Cursor(), "SELECT 1") == "r"
        assert stored(home) == []
        t.enabled = True
        assert t.method()(Cursor(), "SELECT 1") == "r"
        assert len(stored(home)) == 1
    finally:
        ats.shutdown(5.0)
    assert errors == []


def test_bad_construction_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="op must be"):
        _native.CallTracer(print, 9, "sqlite", "c", True, print)
    with pytest.raises(ValueError, match="dialect"):
        _native.CallTracer(print, QUERY, "oracle-9", "c", True, print)


def test_nothing_is_recorded_inside_suppressed(home: Path) -> None:
    from ats import _runtime

    errors: list[BaseException] = []
    t = tracer(lambda c, s: s, errors)
    with _runtime.suppressed():
        assert t.method()(Cursor(), "SELECT 1 FROM inside") == "SELECT 1 FROM inside"
    assert t.method()(Cursor(), "SELECT 2 FROM outside") == "SELECT 2 FROM outside"
    assert [a["db.query.text"] for _, _, a in stored(home)] == ["SELECT ? FROM outside"]
    assert errors == []


def test_as_a_class_attribute_it_is_a_method_of_the_instance(home: Path) -> None:
    errors: list[BaseException] = []
    traced = tracer(sqlite3.Cursor.execute, errors).method()

    class NamedConnection(sqlite3.Connection):
        _ats_db = "x"

    class TracedCursor(sqlite3.Cursor):
        execute = traced

    cur = sqlite3.connect(":memory:", factory=NamedConnection).cursor(TracedCursor)
    assert TracedCursor.execute is traced
    assert (traced.__name__, traced.__qualname__) == ("execute", "Cursor.execute")
    assert traced.__wrapped__ is sqlite3.Cursor.execute
    assert traced.__doc__ == sqlite3.Cursor.execute.__doc__
    assert repr(traced) == "<traced method Cursor.execute>"
    bound = cur.execute
    assert bound.__self__ is cur and bound.__func__ is traced
    assert cur.execute("SELECT ?", (5,)) is cur and cur.fetchone() == (5,)
    assert bound("SELECT 6").fetchone() == (6,)
    with pytest.raises(TypeError, match="keyword"):
        cur.execute(sql="SELECT 1")
    with pytest.raises(TypeError):
        cur.execute()
    assert [(a["db.query.text"], a["db.namespace"]) for _, _, a in stored(home)] == [("SELECT ?", "x")] * 2
    assert errors == []


class ConnWithNamespace:
    def __init__(self, namespace: str) -> None:
        self._ats_db = namespace


def test_many_distinct_statements_are_each_recorded_with_their_own_text(home: Path) -> None:
    # More statements than the tracer's per-string memo has slots, each run twice, interleaved:
    # every record names its own statement and namespace.
    errors: list[BaseException] = []
    t = tracer(lambda c, s: None, errors, via_connection=False).method()
    statements = [f"SELECT c{i} FROM t{i} WHERE id = {i}" for i in range(150)]
    for _ in range(2):
        for i, sql in enumerate(statements):
            t(ConnWithNamespace(f"db{i % 3}"), sql)
    rows = stored(home)
    assert len(rows) == 300
    expected = [(f"SELECT c{i} FROM t{i} WHERE id = ?", f"db{i % 3}", f"SELECT t{i}") for i in range(150)] * 2
    assert [(a["db.query.text"], a["db.namespace"], a["db.query.summary"]) for _, _, a in rows] == expected
    assert errors == []


def test_a_reload_with_another_tenant_is_seen_by_the_next_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The tracer caches the id of (tenant, workspace, region, dialect, component) per pipeline:
    # the pipeline a reload swaps in must not inherit the old one's.
    errors: list[BaseException] = []
    t = tracer(lambda c, s: None, errors).method()
    home = tmp_path / ".ats"
    monkeypatch.setenv("ATS_TENANT", "acme")
    monkeypatch.setenv("ATS_WORKSPACE", "shop")
    assert ats.init(**{"home": str(home), "plugins.disabled": ["ats-sqlite3"]}) is not None
    try:
        t(Cursor(), "SELECT 1 FROM before")
        monkeypatch.setenv("ATS_TENANT", "globex")
        monkeypatch.delenv("ATS_WORKSPACE")
        assert ats.reload() is True
        t(Cursor(), "SELECT 1 FROM after")
        rows = stored(home)
    finally:
        ats.shutdown(5.0)
    assert [(a["db.query.summary"], a.get("sqlx.tenant"), a.get("sqlx.workspace"), a["db.system.name"])
            for _, _, a in rows] == [("SELECT before", "acme", "shop", "sqlite"), ("SELECT after", "globex", None, "sqlite")]
    assert errors == []


FINALIZED: list[str] = []


class ConnWithWeakrefs:
    def __init__(self, namespace: str) -> None:
        self._ats_db = namespace

    def __del__(self) -> None:
        FINALIZED.append(self._ats_db)


class ConnWithoutWeakrefs:
    __slots__ = ("_ats_db",)

    def __init__(self, namespace: str) -> None:
        self._ats_db = namespace

    def __del__(self) -> None:
        FINALIZED.append(self._ats_db)


@pytest.mark.parametrize("conn_class", [ConnWithWeakrefs, ConnWithoutWeakrefs])
def test_a_new_connection_at_a_dead_ones_address_gets_its_own_namespace(home: Path, conn_class: type) -> None:
    # The tracer remembers connections' namespaces by address (through a weak reference where
    # the class has them); CPython hands a freed object's memory to the next one of its size,
    # so this loop reuses addresses (checked below).
    errors: list[BaseException] = []
    t = tracer(lambda c, s: None, errors, via_connection=False).method()
    FINALIZED.clear()
    addresses = []
    for i in range(40):
        conn = conn_class(f"db{i}.db")
        addresses.append(id(conn))
        t(conn, "SELECT 1")
        del conn
    assert len(set(addresses)) < len(addresses), "no address was reused: the test proves nothing"
    assert FINALIZED == [f"db{i}.db" for i in range(40)], "the tracer kept a connection alive"
    assert [a["db.namespace"] for _, _, a in stored(home)] == [f"db{i}.db" for i in range(40)]
    assert errors == []
