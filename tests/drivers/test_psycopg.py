"""ats-psycopg against the real PostgreSQL of ci/services.sh, through the real native pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from psycopg import sql

import ats_psycopg
from ats import context, drivers
from ats.instrumentation import _reset_instrumentation_errors, instrumentation_errors

from driver_support import attrs as _attrs
from driver_support import LITERAL_EMAIL, LITERAL_NAME, SECRET, Recording, Server

ORIGINALS = {
    (cls, name): vars(cls)[name]
    for cls, names in (
        (psycopg.Connection, ("connect", "commit", "rollback", "close")),
        (psycopg.AsyncConnection, ("connect", "commit", "rollback", "close")),
        (psycopg.Cursor, ("execute", "executemany", "copy")),
        (psycopg.AsyncCursor, ("execute", "executemany", "copy")),
        (psycopg.ServerCursor, ("execute",)),
        (psycopg.AsyncServerCursor, ("execute",)),
    )
    for name in names
}
ORIGINAL_CONNECT = psycopg.connect


@pytest.fixture
def traced(recording: Recording, pg: Server) -> Iterator[Recording]:
    assert ats_psycopg.instrumentor.instrument() is True
    try:
        yield recording
    finally:
        assert ats_psycopg.instrumentor.uninstrument() is True


def run_app(dsn: str) -> None:
    conn = psycopg.connect(dsn)
    conn.execute("CREATE TEMP TABLE users (id serial PRIMARY KEY, name text, email text UNIQUE)")
    conn.execute(
        f"INSERT INTO users (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
        f" /* password={SECRET} */"
    )
    cur = conn.cursor()
    cur.executemany("INSERT INTO users (name, email) VALUES (%s, %s)", [("a", "a@x"), ("b", "b@x")])
    cur.execute("SELECT name FROM users WHERE email = %s", (LITERAL_EMAIL,))
    assert cur.fetchone() == (LITERAL_NAME,)
    with pytest.raises(psycopg.errors.UniqueViolation):
        cur.execute(f"INSERT INTO users (name, email) VALUES ('x', '{LITERAL_EMAIL}')")
    conn.rollback()
    conn.execute("SELECT 1")
    conn.commit()
    conn.commit()  # idle: psycopg sends nothing, nothing is recorded
    conn.close()


def test_spans_attributes_and_redaction(traced: Recording, pg: Server) -> None:
    parent = context.SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", 0x00F067AA0BA902B7, True)
    token = context.attach(parent)
    try:
        run_app(pg.dsn)
    finally:
        context.detach(token)
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.error",
        "driver.query.ok",  # ROLLBACK
        "driver.query.ok",  # SELECT 1
        "driver.query.ok",  # COMMIT
        "driver.close.ok",
    ]
    for span in spans:
        attrs = _attrs(span)
        assert span["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert span["parent_span_id"] == "00f067aa0ba902b7"
        assert span["component"] == "ats-psycopg"
        assert span["dialect"] == "postgresql"
        assert attrs["db.system"] == attrs["db.system.name"] == "postgresql"
        assert attrs["db.namespace"] == pg.database
        assert attrs["net.peer.name"] == attrs["server.address"] == pg.host
        assert attrs["net.peer.port"] == attrs["server.port"] == pg.port
        assert span["start_ns"] <= span["end_ns"]

    literal_insert = _attrs(spans[2])
    assert literal_insert["db.statement"] == "INSERT INTO users (name, email) VALUES (?, ?)"
    assert literal_insert["db.response.returned_rows"] == 1
    many = _attrs(spans[3])
    assert many["db.operation"] == "INSERT"
    assert many["db.collection.name"] == "users"
    assert many["db.response.returned_rows"] == 2
    select = _attrs(spans[4])
    assert select["db.operation.name"] == "SELECT"
    assert select["db.query.summary"] == "SELECT users"
    assert select["db.response.returned_rows"] == 1
    assert select["db.sqlx.air_id"].startswith("air:Q-")

    error = spans[5]
    assert error["status"] == "error"
    assert _attrs(error)["error.type"] == "UniqueViolation"
    assert _attrs(error)["db.response.status_code"] == "23505"
    assert "db.response.returned_rows" not in _attrs(error)
    assert _attrs(spans[6])["db.operation"] == "ROLLBACK"
    assert _attrs(spans[8])["db.operation"] == "COMMIT"
    assert "db.statement" not in _attrs(spans[0])
    assert "db.statement" not in _attrs(spans[9])

    traced.assert_no_literals()


def test_failing_query_sqlstate(traced: Recording, pg: Server) -> None:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table WHERE id = 42")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.error",
        "driver.query.error",
        "driver.close.ok",
    ]
    assert (_attrs(spans[1])["error.type"], _attrs(spans[1])["db.response.status_code"]) == (
        "UndefinedTable",
        "42P01",
    )
    assert _attrs(spans[1])["db.statement"] == "SELECT * FROM no_such_table WHERE id = ?"
    assert (_attrs(spans[2])["error.type"], _attrs(spans[2])["db.response.status_code"]) == (
        "DivisionByZero",
        "22012",
    )


def test_failed_handshake(traced: Recording, pg: Server) -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.dsn.replace(f"password={pg.password}", "password=wrong"))
    (span,) = traced.spans()
    assert span["evt"] == "driver.handshake.error"
    assert _attrs(span)["error.type"] == "OperationalError"
    # psycopg 3 exposes no SQLSTATE for a failed connection attempt (no result object).
    assert "db.response.status_code" not in _attrs(span)
    assert _attrs(span)["server.port"] == pg.port
    assert _attrs(span)["db.namespace"] == pg.database
    assert b"wrong" not in traced.stored_bytes()


def test_from_import_connect_server_cursor_copy_and_composed(traced: Recording, pg: Server) -> None:
    from psycopg import connect

    with connect(pg.dsn) as conn:
        with conn.cursor(name="named") as cur:
            cur.execute("SELECT generate_series(1, 3)")
            assert len(cur.fetchall()) == 3
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.Literal(SECRET), sql.Identifier("pg_class")))
            with cur.copy("COPY (SELECT 1 UNION ALL SELECT 2) TO STDOUT") as copy:
                assert b"".join(bytes(b) for b in copy) == b"1\n2\n"
        with psycopg.ClientCursor(conn) as cur:
            cur.execute("SELECT %s", (LITERAL_NAME,))
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",  # DECLARE of the named cursor
        "driver.query.ok",  # composed SQL
        "driver.query.ok",  # COPY
        "driver.query.ok",  # client-side binding cursor
        "driver.query.ok",  # COMMIT by `with conn:`
        "driver.close.ok",
    ]
    assert _attrs(spans[2])["db.statement"] == 'SELECT ? FROM "pg_class"'
    assert _attrs(spans[3])["db.operation"] == "COPY"
    assert _attrs(spans[3])["db.response.returned_rows"] == 2
    assert _attrs(spans[5])["db.operation"] == "COMMIT"
    traced.assert_no_literals()


def test_pool(traced: Recording, pg: Server) -> None:
    with psycopg_pool.ConnectionPool(pg.dsn, min_size=2, max_size=2, open=True) as pool:
        pool.wait(10.0)
        with pool.connection() as conn:
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
    names = traced.names()
    assert sorted(names) == sorted(
        ["driver.handshake.ok"] * 2 + ["driver.query.ok"] * 2 + ["driver.close.ok"] * 2
    )
    queries = [_attrs(s)["db.operation"] for s in traced.spans() if s["evt"] == "driver.query.ok"]
    assert queries == ["SELECT", "COMMIT"]


def test_async_connection_and_pool(traced: Recording, pg: Server) -> None:
    async def main() -> None:
        aconn = await psycopg.AsyncConnection.connect(pg.dsn)
        async with aconn.cursor() as cur:
            await cur.execute("SELECT %s::int + 1", (41,))
            assert await cur.fetchone() == (42,)
            await cur.executemany("SELECT %s", [(1,), (2,)])
            with pytest.raises(psycopg.errors.UndefinedTable):
                await cur.execute("SELECT * FROM missing_async")
        await aconn.rollback()
        async with aconn.cursor(name="anamed") as cur:
            await cur.execute("SELECT 1")
        await aconn.commit()
        await aconn.close()
        async with psycopg_pool.AsyncConnectionPool(pg.dsn, min_size=1, max_size=1, open=False) as pool:
            await pool.wait(10.0)
            async with pool.connection() as conn:
                await conn.execute("SELECT 2")

    asyncio.run(main())
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.query.ok",
        "driver.query.error",
        "driver.query.ok",  # ROLLBACK
        "driver.query.ok",  # DECLARE
        "driver.query.ok",  # COMMIT
        "driver.close.ok",
        "driver.handshake.ok",  # pool
        "driver.query.ok",
        "driver.query.ok",  # COMMIT on leaving pool.connection()
        "driver.close.ok",
    ]
    assert _attrs(spans[3])["db.response.status_code"] == "42P01"
    assert _attrs(spans[3])["error.type"] == "UndefinedTable"
    assert all(s["component"] == "ats-psycopg" for s in spans)


def test_outer_statement_gets_one_observation_instead_of_a_span(traced: Recording, pg: Server) -> None:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        with drivers.outer_statement() as seen:
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute("SELECT * FROM nowhere")
        conn.execute("SELECT 1")
    assert traced.names() == [
        "driver.handshake.ok",
        "driver.query.ok",
        "driver.close.ok",
    ]
    (obs,) = seen
    assert obs.op == drivers.QUERY
    assert obs.sql == "SELECT * FROM nowhere"
    assert obs.peer == drivers.Peer(pg.host, pg.port, pg.database)
    assert (obs.error_type, obs.status_code, obs.component) == ("UndefinedTable", "42P01", "ats-psycopg")


def test_recorder_failure_never_reaches_the_program(
    traced: Recording, pg: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _reset_instrumentation_errors()

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("bug in the recorder")

    monkeypatch.setattr(traced, "pipeline", traced.pipeline)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        import ats._runtime as runtime_mod

        real = runtime_mod.current()
        monkeypatch.setattr(runtime_mod, "current", lambda: type("R", (), {"pipeline": type("P", (), {"record_query": staticmethod(broken)})()})())
        ats_psycopg.recorder.bind()
        assert conn.execute("SELECT 7").fetchone() == (7,)
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM nowhere")
        monkeypatch.setattr(runtime_mod, "current", lambda: real)
        ats_psycopg.recorder.bind()
    assert instrumentation_errors()["ats-psycopg.record"] >= 2
    _reset_instrumentation_errors()


def test_uninstrument_restores_originals(recording: Recording, pg: Server) -> None:
    assert ats_psycopg.instrumentor.instrument() is True
    assert psycopg.connect is not ORIGINAL_CONNECT
    assert ats_psycopg.instrumentor.instrument() is False  # idempotent
    assert ats_psycopg.instrumentor.uninstrument() is True
    assert psycopg.connect == ORIGINAL_CONNECT
    for (cls, name), original in ORIGINALS.items():
        assert vars(cls)[name] is original, (cls, name)
    with psycopg.connect(pg.dsn) as conn:
        conn.execute("SELECT 1")
    assert recording.spans() == []


def test_pool_gauges(traced: Recording, pg: Server) -> None:
    from ats import metrics

    def levels(name: str) -> dict[tuple[tuple[str, str], ...], Any]:
        return {tuple(sorted(p["labels"].items())): p["value"] for p in metrics.snapshot() if p["name"] == name}

    assert ats_psycopg.pool_instrumentor.instrument() is True
    try:
        with psycopg_pool.ConnectionPool(pg.dsn, min_size=2, max_size=2, open=True, name="ats-test-pool") as pool:
            pool.wait(10.0)
            conn = pool.getconn()
            key = (("dialect", "postgresql"), ("id", "ats-test-pool"))
            assert (levels("sqlx_pool_active")[key], levels("sqlx_pool_idle")[key]) == (1, 1)
            state = lambda s: (("db.client.connection.pool.name", "ats-test-pool"), ("db.client.connection.state", s))  # noqa: E731
            count = levels("db.client.connection.count")
            assert (count[state("used")], count[state("idle")]) == (1, 1)
            pool.putconn(conn)
            assert (levels("sqlx_pool_active")[key], levels("sqlx_pool_idle")[key]) == (0, 2)
    finally:
        assert ats_psycopg.pool_instrumentor.uninstrument() is True
    assert "getconn" not in vars(psycopg_pool.ConnectionPool) or not hasattr(
        vars(psycopg_pool.ConnectionPool)["getconn"], "__wrapped__")
