"""ats-psycopg2 against the real PostgreSQL of ci/services.sh, through the real native pipeline."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
import pytest

import ats_psycopg2

from driver_support import attrs as _attrs
from driver_support import LITERAL_EMAIL, LITERAL_NAME, SECRET, Recording, Server

ORIGINAL_CONNECT = psycopg2.connect


@pytest.fixture
def traced(recording: Recording, pg: Server) -> Iterator[Recording]:
    assert ats_psycopg2.instrumentor.instrument() is True
    try:
        yield recording
    finally:
        assert ats_psycopg2.instrumentor.uninstrument() is True


def test_spans_attributes_and_redaction(traced: Recording, pg: Server) -> None:
    conn = psycopg2.connect(pg.dsn)
    assert type(conn).__mro__[1] is psycopg2.extensions.connection  # a real subclass, no proxy
    cur = conn.cursor()
    assert isinstance(cur, psycopg2.extensions.cursor)
    cur.execute("CREATE TEMP TABLE users (id serial PRIMARY KEY, name text, email text UNIQUE)")
    cur.execute(
        f"INSERT INTO users (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
        f" /* password={SECRET} */"
    )
    cur.executemany("INSERT INTO users (name, email) VALUES (%s, %s)", [("a", "a@x"), ("b", "b@x")])
    cur.execute("SELECT name FROM users WHERE email = %s", (LITERAL_EMAIL,))
    assert cur.fetchone() == (LITERAL_NAME,)
    with pytest.raises(psycopg2.errors.UniqueViolation):
        cur.execute(f"INSERT INTO users (name, email) VALUES ('x', '{LITERAL_EMAIL}')")
    conn.rollback()
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE nums (n int)")
    cur.copy_from(io.StringIO("1\n2\n3\n"), "nums")
    out = io.StringIO()
    cur.copy_expert("COPY nums TO STDOUT", out)
    assert out.getvalue() == "1\n2\n3\n"
    conn.commit()
    conn.close()

    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.error",
        "driver.query.ok",  # ROLLBACK
        "driver.query.ok",
        "driver.query.ok",  # copy_from
        "driver.query.ok",  # copy_expert
        "driver.query.ok",  # COMMIT
        "driver.close.ok",
    ]
    for span in spans:
        attrs = _attrs(span)
        assert span["component"] == "ats-psycopg2"
        assert span["dialect"] == "postgresql"
        assert attrs["db.system.name"] == "postgresql"
        assert attrs["db.namespace"] == pg.database
        assert attrs["server.address"] == attrs["net.peer.name"] == pg.host
        assert attrs["server.port"] == attrs["net.peer.port"] == pg.port
    assert _attrs(spans[2])["db.statement"] == "INSERT INTO users (name, email) VALUES (?, ?)"
    assert _attrs(spans[3])["db.response.returned_rows"] == 2
    assert _attrs(spans[4])["db.query.summary"] == "SELECT users"
    assert _attrs(spans[4])["db.response.returned_rows"] == 1
    error = _attrs(spans[5])
    assert spans[5]["status"] == "error"
    assert (error["error.type"], error["db.response.status_code"]) == ("UniqueViolation", "23505")
    assert _attrs(spans[6])["db.operation"] == "ROLLBACK"
    assert _attrs(spans[8])["db.statement"] == "COPY nums FROM STDIN"
    assert _attrs(spans[8])["db.response.returned_rows"] == 3
    assert _attrs(spans[9])["db.operation"] == "COPY"
    assert _attrs(spans[10])["db.operation"] == "COMMIT"
    traced.assert_no_literals()


def test_failing_query_sqlstate_and_failed_handshake(traced: Recording, pg: Server) -> None:
    conn = psycopg2.connect(pg.dsn)
    with pytest.raises(psycopg2.errors.UndefinedTable):
        conn.cursor().execute("SELECT * FROM no_such_table WHERE id = 42")
    conn.close()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(pg.dsn.replace(f"password={pg.password}", "password=wrong"))
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.error",
        "driver.close.ok",
        "driver.handshake.error",
    ]
    assert (_attrs(spans[1])["error.type"], _attrs(spans[1])["db.response.status_code"]) == (
        "UndefinedTable",
        "42P01",
    )
    assert _attrs(spans[3])["error.type"] == "OperationalError"
    assert _attrs(spans[3])["server.port"] == pg.port
    assert b"wrong" not in traced.stored_bytes()


def test_extras_factories_from_import_and_pool(traced: Recording, pg: Server) -> None:
    from psycopg2 import connect

    conn = connect(pg.dsn, connection_factory=psycopg2.extras.RealDictConnection)
    assert isinstance(conn, psycopg2.extras.RealDictConnection)
    cur = conn.cursor()
    assert isinstance(cur, psycopg2.extras.RealDictCursor)
    cur.execute("SELECT 1 AS one")
    assert cur.fetchone() == {"one": 1}
    dict_cur = conn.cursor(cursor_factory=psycopg2.extras.DictCursor)
    dict_cur.execute("SELECT 2 AS two")
    assert dict_cur.fetchone()["two"] == 2
    psycopg2.extras.execute_values(
        conn.cursor(), "SELECT * FROM (VALUES %s) AS t(a, b)", [(1, LITERAL_NAME), (2, SECRET)]
    )
    named = conn.cursor(name="named")
    named.execute("SELECT generate_series(1, 3)")
    assert len(named.fetchall()) == 3
    conn.close()

    pool = psycopg2.pool.ThreadedConnectionPool(1, 2, pg.dsn)
    pooled = pool.getconn()
    pooled.cursor().execute("SELECT 3")
    pool.putconn(pooled)
    pool.closeall()

    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",  # RealDictCursor
        "driver.query.ok",  # DictCursor
        "driver.query.ok",  # execute_values (one execute)
        "driver.query.ok",  # named cursor DECLARE
        "driver.close.ok",
        "driver.handshake.ok",  # pool
        "driver.query.ok",
        "driver.query.ok",  # ROLLBACK by putconn(): the SELECT had opened a transaction
        "driver.close.ok",
    ]
    assert _attrs(spans[1])["db.response.returned_rows"] == 1
    assert _attrs(spans[4])["db.operation"] == "SELECT"
    assert _attrs(spans[8])["db.operation"] == "ROLLBACK"
    traced.assert_no_literals()


def test_uninstrument_restores_originals(recording: Recording, pg: Server) -> None:
    assert ats_psycopg2.instrumentor.instrument() is True
    assert psycopg2.connect is not ORIGINAL_CONNECT
    assert ats_psycopg2.instrumentor.instrument() is False
    assert ats_psycopg2.instrumentor.uninstrument() is True
    assert psycopg2.connect is ORIGINAL_CONNECT
    conn = psycopg2.connect(pg.dsn)
    assert type(conn) is psycopg2.extensions.connection
    conn.cursor().execute("SELECT 1")
    conn.close()
    assert recording.spans() == []
