"""ats-pymysql against the real MariaDB of ci/services.sh, through the real native pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pymysql.connections
import pymysql.cursors
import pytest

import ats_pymysql

from driver_support import attrs as _attrs
from driver_support import LITERAL_EMAIL, LITERAL_NAME, SECRET, Recording, Server

ORIGINALS = {
    (cls, name): vars(cls)[name]
    for cls, names in (
        (pymysql.connections.Connection, ("connect", "begin", "commit", "rollback", "close")),
        (pymysql.cursors.Cursor, ("execute", "executemany", "callproc")),
    )
    for name in names
}


@pytest.fixture
def traced(recording: Recording, mysql: Server) -> Iterator[Recording]:
    assert ats_pymysql.instrumentor.instrument() is True
    try:
        yield recording
    finally:
        assert ats_pymysql.instrumentor.uninstrument() is True


def _connect(mysql: Server, **extra: Any) -> pymysql.connections.Connection[Any]:
    from pymysql import connect

    return connect(
        host=mysql.host, port=mysql.port, user=mysql.user, password=mysql.password,
        database=mysql.database, **extra,
    )  # fmt: skip


def test_spans_attributes_and_redaction(traced: Recording, mysql: Server) -> None:
    conn = _connect(mysql)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS users")
    cur.execute("CREATE TABLE users (id int AUTO_INCREMENT PRIMARY KEY, name text, email varchar(64) UNIQUE)")
    cur.execute(
        f"INSERT INTO users (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
        f" /* password={SECRET} */"
    )
    cur.executemany("INSERT INTO users (name, email) VALUES (%s, %s)", [("a", "a@x"), ("b", "b@x")])
    cur.execute("SELECT name FROM users WHERE email = %s", (LITERAL_EMAIL,))
    assert cur.fetchone() == (LITERAL_NAME,)
    conn.commit()
    with pytest.raises(pymysql.err.IntegrityError):
        cur.execute(f"INSERT INTO users (name, email) VALUES ('x', '{LITERAL_EMAIL}')")
    conn.rollback()
    conn.begin()
    dict_cur = conn.cursor(pymysql.cursors.DictCursor)
    dict_cur.execute("UPDATE users SET name = %s WHERE email = %s", ("y", "a@x"))
    conn.commit()
    conn.close()

    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",  # DROP
        "driver.query.ok",  # CREATE
        "driver.query.ok",  # INSERT literals
        "driver.query.ok",  # executemany: one span
        "driver.query.ok",  # SELECT
        "driver.query.ok",  # COMMIT
        "driver.query.error",
        "driver.query.ok",  # ROLLBACK
        "driver.query.ok",  # BEGIN
        "driver.query.ok",  # UPDATE
        "driver.query.ok",  # COMMIT
        "driver.close.ok",
    ]
    for span in spans:
        attrs = _attrs(span)
        assert span["component"] == "ats-pymysql"
        assert span["dialect"] == "mysql"
        assert attrs["db.system"] == attrs["db.system.name"] == "mysql"
        assert attrs["db.namespace"] == mysql.database
        assert attrs["server.address"] == attrs["net.peer.name"] == mysql.host
        assert attrs["server.port"] == attrs["net.peer.port"] == mysql.port
    assert _attrs(spans[3])["db.statement"] == "INSERT INTO users (name, email) VALUES (?, ?)"
    assert _attrs(spans[4])["db.response.returned_rows"] == 2
    assert _attrs(spans[5])["db.query.summary"] == "SELECT users"
    assert _attrs(spans[5])["db.response.returned_rows"] == 1
    assert _attrs(spans[6])["db.operation"] == "COMMIT"
    error = _attrs(spans[7])
    assert spans[7]["status"] == "error"
    assert (error["error.type"], error["db.response.status_code"]) == ("IntegrityError", "23000")
    assert [_attrs(s)["db.operation"] for s in spans[8:12]] == ["ROLLBACK", "BEGIN", "UPDATE", "COMMIT"]
    assert _attrs(spans[10])["db.response.returned_rows"] == 1
    traced.assert_no_literals()


def test_failing_query_sqlstate_and_handshake(traced: Recording, mysql: Server) -> None:
    conn = _connect(mysql)
    with pytest.raises(pymysql.err.ProgrammingError):
        conn.cursor().execute("SELECT * FROM no_such_table WHERE id = 42")
    conn.close()
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=mysql.host, port=mysql.port, user=mysql.user, password="wrong")
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.error",
        "driver.close.ok",
        "driver.handshake.error",
    ]
    assert (_attrs(spans[1])["error.type"], _attrs(spans[1])["db.response.status_code"]) == (
        "ProgrammingError",
        "42S02",
    )
    assert (_attrs(spans[3])["error.type"], _attrs(spans[3])["db.response.status_code"]) == (
        "OperationalError",
        "28000",
    )
    assert b"wrong" not in traced.stored_bytes()


def test_unbuffered_cursor_and_callproc(traced: Recording, mysql: Server) -> None:
    conn = _connect(mysql, cursorclass=pymysql.cursors.SSCursor, autocommit=True)
    cur = conn.cursor()
    cur.execute("DROP PROCEDURE IF EXISTS ats_double")
    cur.execute("CREATE PROCEDURE ats_double(IN x INT) SELECT x * 2")
    cur.callproc("ats_double", (21,))
    assert list(cur.fetchall()) == [(42,)]
    cur.close()
    conn.close()
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",  # callproc
        "driver.close.ok",
    ]
    assert _attrs(spans[3])["db.statement"] == "CALL ats_double()"
    assert "db.response.returned_rows" not in _attrs(spans[3])  # unbuffered: unknown


def test_uninstrument_restores_originals(recording: Recording, mysql: Server) -> None:
    assert ats_pymysql.instrumentor.instrument() is True
    assert ats_pymysql.instrumentor.instrument() is False
    assert ats_pymysql.instrumentor.uninstrument() is True
    for (cls, name), original in ORIGINALS.items():
        assert vars(cls)[name] is original, (cls, name)
    conn = _connect(mysql)
    conn.cursor().execute("SELECT 1")
    conn.close()
    assert recording.spans() == []
