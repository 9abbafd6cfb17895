"""ats-sqlite3 end to end through the real native pipeline (ats._native.driver_call into a real Pipeline).

The runtime object is a stand-in holding a real Pipeline, which is activated for
``driver_call``; everything below it — normalisation, redaction, attributes, metrics, JSONL and SQLite
sinks — is the real thing.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ats
import ats_sqlite3
from ats import _native, context

SECRET = "hunter2-SECRET-9f8e7d"
LITERAL_NAME = "Margaret Hamilton"
LITERAL_EMAIL = "margaret@example.org"
ORIGINAL_CONNECT = sqlite3.connect


@dataclass
class StandInRuntime:
    pipeline: _native.Pipeline


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_native.Pipeline]:
    pipe = _native.Pipeline(store_path=str(tmp_path / "store.db"), jsonl_dir=str(tmp_path / "jsonl"))
    rt = StandInRuntime(pipe)
    try:
        import ats._runtime as runtime_mod  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        runtime_mod = types.ModuleType("ats._runtime")
        monkeypatch.setitem(sys.modules, "ats._runtime", runtime_mod)
        monkeypatch.setattr(ats, "_runtime", runtime_mod, raising=False)
    monkeypatch.setattr(runtime_mod, "current", lambda: rt, raising=False)
    runtime_mod._activate(pipe)
    ats_sqlite3.instrumentor.instrument()
    try:
        yield pipe
    finally:
        ats_sqlite3.instrumentor.uninstrument()
        _native.deactivate()
        pipe.shutdown(5.0)


def records(tmp_path: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in sorted((tmp_path / "jsonl").glob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return lines


def all_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file())


def run_app(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE)")
    conn.execute(
        f"INSERT INTO users (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
        f" /* password={SECRET} */"
    )
    conn.executemany("INSERT INTO users (name, email) VALUES (?, ?)", [("a", "a@x"), ("b", "b@x")])
    cur = conn.cursor()
    cur.execute("SELECT name FROM users WHERE email = ?", (LITERAL_EMAIL,))
    assert cur.fetchone() == (LITERAL_NAME,)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(f"INSERT INTO users (name, email) VALUES ('x', '{LITERAL_EMAIL}')")
    conn.commit()
    conn.close()


def test_spans_attributes_and_redaction(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    parent = context.SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", 0x00F067AA0BA902B7, True)
    token = context.attach(parent)
    try:
        run_app(tmp_path / "app.db")
    finally:
        context.detach(token)
    assert pipeline.flush(5.0)

    spans = [r for r in records(tmp_path) if r["kind"] == "span"]
    assert [r["evt"] for r in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.error",
        "driver.close.ok",
    ]
    for span in spans:
        assert span["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert span["parent_span_id"] == "00f067aa0ba902b7"
        assert span["component"] == "ats-sqlite3"
        assert span["dialect"] == "sqlite"
        assert span["attributes"]["db.system"] == "sqlite"
        assert span["attributes"]["db.system.name"] == "sqlite"
        assert span["attributes"]["db.namespace"] == "app.db"
        assert span["start_ns"] <= span["end_ns"]

    insert = spans[2]["attributes"]
    assert insert["db.statement"] == "INSERT INTO users (name, email) VALUES (?, ?)"
    assert insert["db.query.text"] == insert["db.statement"]
    assert insert["db.operation"] == "INSERT"
    assert insert["db.operation.name"] == "INSERT"
    assert insert["db.collection.name"] == "users"
    assert insert["db.sqlx.air_id"].startswith("air:Q-")

    select = spans[4]["attributes"]
    assert select["db.statement"] == "SELECT name FROM users WHERE email = ?"
    assert select["db.query.summary"] == "SELECT users"

    error = spans[5]
    assert error["status"] == "error"
    assert error["attributes"]["error.type"] == "IntegrityError"

    # No literal value and no secret anywhere: JSONL files and the store's bytes.
    data = all_bytes(tmp_path / "jsonl") + (tmp_path / "store.db").read_bytes()
    for wal in tmp_path.glob("store.db-*"):
        data += wal.read_bytes()
    for value in (SECRET, LITERAL_NAME, LITERAL_EMAIL, "hunter2"):
        assert value.encode() not in data, value


def test_driver_metrics(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    run_app(tmp_path / "metrics.db")
    assert pipeline.flush(5.0)
    snapshot = pipeline.metrics.snapshot()

    def metric(name: str, **labels: str) -> dict[str, Any]:
        (found,) = [m for m in snapshot if m["name"] == name and m["labels"] == labels]
        return found

    assert metric("sqlx_driver_latency_ms", dialect="sqlite", op="handshake")["count"] == 1
    assert metric("sqlx_driver_latency_ms", dialect="sqlite", op="query")["count"] == 5
    assert metric("sqlx_driver_errors_total", dialect="sqlite", **{"class": "IntegrityError"})[
        "value"
    ] == 1.0
    assert metric("db.client.operation.duration", **{"db.system.name": "sqlite"})["count"] >= 6


def test_no_parent_starts_a_trace_per_statement(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("SELECT 1")
    conn.execute("SELECT 2")
    assert pipeline.flush(5.0)
    spans = [r for r in records(tmp_path) if r["kind"] == "span"]
    assert len(spans) == 3
    assert all(len(s["trace_id"]) == 32 for s in spans)
    assert spans[1]["trace_id"] != spans[2]["trace_id"]
    assert spans[0]["attributes"]["db.namespace"] == ":memory:"


def test_wall_clock_times(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    before = time.time_ns()
    sqlite3.connect(":memory:").execute("SELECT 1")
    after = time.time_ns()
    assert pipeline.flush(5.0)
    for span in (r for r in records(tmp_path) if r["kind"] == "span"):
        assert before <= span["start_ns"] <= span["end_ns"] <= after


def spans_of(pipeline: _native.Pipeline, tmp_path: Path) -> list[tuple[str, str | None]]:
    """(event, sanitised statement) of every span recorded so far."""
    assert pipeline.flush(5.0)
    return [(r["evt"], r["attributes"].get("db.statement")) for r in records(tmp_path) if r["kind"] == "span"]


# The same compatibility checks as test_sqlite3.py, here with the native tracers that ship
# (``ats._native.CallTracer`` method descriptors) and the spans they really record.


def test_native_tracers_keep_real_sqlite3_objects(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    assert isinstance(conn, sqlite3.Connection) and type(conn) is not sqlite3.Connection
    cur = conn.cursor()
    assert isinstance(cur, sqlite3.Cursor) and cur.connection is conn
    assert isinstance(conn.execute("SELECT 1"), sqlite3.Cursor)
    with pytest.raises(AttributeError):
        conn.some_attribute = 1  # type: ignore[attr-defined]
    # Misuse fails exactly as without ATS; a call with a statement is recorded as the failed
    # statement it is, one without (``execute()``) is left to sqlite3 untraced.
    plain = ORIGINAL_CONNECT(":memory:")
    for call in (lambda c: c.execute(), lambda c: c.cursor().execute(42), lambda c: c.executemany("SELECT ?", 5),
                 lambda c: c.cursor().executescript(None), lambda c: c.execute("SELECT ?", (1,), 2)):
        with pytest.raises(Exception) as without:
            call(plain)
        with pytest.raises(Exception) as with_ats:
            call(conn)
        assert (type(with_ats.value), str(with_ats.value)) == (type(without.value), str(without.value))
    conn.close()
    assert spans_of(pipeline, tmp_path) == [
        ("driver.handshake.ok", None), ("driver.query.ok", "SELECT ?"),
        ("driver.query.error", None), ("driver.query.error", "SELECT ?"),
        ("driver.query.error", None), ("driver.query.error", "SELECT ?"), ("driver.close.ok", None),
    ]


def test_native_tracers_keep_backup_functions_iterdump_and_factories(
    pipeline: _native.Pipeline, tmp_path: Path
) -> None:
    src = sqlite3.connect(":memory:")
    src.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    src.execute("INSERT INTO users (name) VALUES ('ann')")
    src.commit()
    dst = sqlite3.connect(":memory:")
    src.backup(dst)  # C-level type check on the target
    plain = ORIGINAL_CONNECT(":memory:")
    src.backup(plain)
    assert plain.execute("SELECT name FROM users").fetchall() == [("ann",)]

    dst.create_function("twice", 1, lambda x: x * 2)
    dst.create_aggregate("longest", 1, Longest)  # type: ignore[arg-type]
    dst.create_collation("backwards", lambda a, b: (a < b) - (a > b))
    dst.cursor().executemany("INSERT INTO users (name) VALUES (?)", [("bo",), ("cy",)])
    assert dst.execute("SELECT twice(21), longest(name) FROM users").fetchone() == (42, "ann")
    assert dst.execute("SELECT name FROM users ORDER BY name COLLATE backwards").fetchall() == [
        ("cy",), ("bo",), ("ann",)]
    assert list(dst.iterdump()) == [
        "BEGIN TRANSACTION;",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE);",
        "INSERT INTO \"users\" VALUES(1,'ann');",
        "INSERT INTO \"users\" VALUES(2,'bo');",
        "INSERT INTO \"users\" VALUES(3,'cy');",
        "COMMIT;",
    ]

    dst.row_factory = sqlite3.Row
    row = dst.execute("SELECT id, name FROM users WHERE id = 1").fetchone()
    assert isinstance(row, sqlite3.Row) and (row["id"], row["name"]) == (1, "ann")
    assert dst.cursor().execute("SELECT name FROM users WHERE id = 1").fetchone()["name"] == "ann"
    cur = dst.cursor()
    cur.row_factory = lambda _cursor, r: {"n": r[0]}
    assert cur.execute("SELECT name FROM users WHERE id = 2").fetchone() == {"n": "bo"}
    dst.row_factory = None
    dst.text_factory = bytes
    assert dst.execute("SELECT name FROM users WHERE id = 3").fetchone() == (b"cy",)
    dst.cursor().executescript("UPDATE users SET name = upper(name); DELETE FROM users WHERE id = 3;")
    got = [s for s in spans_of(pipeline, tmp_path) if s[0] != "driver.handshake.ok"]
    # backup() copies pages in C (no statement); iterdump() runs its own reads on the connection
    # (which ones depends on CPython's sqlite3/dump.py), recorded like any other statement.
    dump = got[5:-5]
    assert dump and all(s[0] == "driver.query.ok" and s[1].split()[0] in ("SELECT", "PRAGMA") for s in dump)
    assert got[:5] + got[-5:] == [
        ("driver.query.ok", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"),
        ("driver.query.ok", "INSERT INTO users (name) VALUES (?)"),
        ("driver.query.ok", "INSERT INTO users (name) VALUES (?)"),
        ("driver.query.ok", "SELECT twice(?), longest(name) FROM users"),
        ("driver.query.ok", "SELECT name FROM users ORDER BY name COLLATE backwards"),
        ("driver.query.ok", "SELECT id, name FROM users WHERE id = ?"),
        ("driver.query.ok", "SELECT name FROM users WHERE id = ?"),
        ("driver.query.ok", "SELECT name FROM users WHERE id = ?"),
        ("driver.query.ok", "SELECT name FROM users WHERE id = ?"),
        ("driver.query.ok", "UPDATE users SET name = upper(name); DELETE FROM users WHERE id = ?"),
    ]


class Longest:
    """An aggregate: the longest text of a column."""

    def __init__(self) -> None:
        self.longest = ""

    def step(self, value: str) -> None:
        self.longest = max(self.longest, value, key=len)

    def finalize(self) -> str:
        return self.longest


def test_native_tracers_under_user_factories_and_transactions(pipeline: _native.Pipeline, tmp_path: Path) -> None:
    class MyCursor(sqlite3.Cursor):
        def first(self) -> Any:
            return self.fetchone()[0]

    class MyConnection(sqlite3.Connection):
        def cursor(self, factory: Any = MyCursor) -> Any:
            return super().cursor(factory)

    conn = sqlite3.connect(tmp_path / "app.db", factory=MyConnection)
    assert isinstance(conn, MyConnection)
    cur = conn.execute("SELECT 3")
    assert isinstance(cur, MyCursor) and cur.first() == 3
    assert conn.cursor(sqlite3.Cursor).execute("SELECT 4").fetchone() == (4,)
    with conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ZeroDivisionError):
        with conn:
            conn.execute("INSERT INTO t VALUES (2)")
            1 / 0  # noqa: B018
    conn.close()
    assert ORIGINAL_CONNECT(tmp_path / "app.db").execute("SELECT x FROM t").fetchall() == [(1,)]
    assert spans_of(pipeline, tmp_path) == [
        ("driver.handshake.ok", None), ("driver.query.ok", "SELECT ?"), ("driver.query.ok", "SELECT ?"),
        ("driver.query.ok", "CREATE TABLE t (x)"), ("driver.query.ok", "INSERT INTO t VALUES (?)"),
        ("driver.query.ok", "INSERT INTO t VALUES (?)"), ("driver.close.ok", None),
    ]
