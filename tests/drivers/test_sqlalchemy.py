"""ats-sqlalchemy against the real PostgreSQL (psycopg sync, asyncpg async) and MariaDB (PyMySQL):
one span per statement with the driver layer's observation merged in, SLO classes, metrics,
pool gauges, DDL log records and the SQL commenter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import ats_asyncpg
import ats_psycopg
import ats_pymysql
import ats_sqlalchemy
from ats import context, metrics
from ats.config import load_config

from driver_support import LITERAL_EMAIL, LITERAL_NAME, SECRET, Recording, Server
from driver_support import attrs as _attrs


@pytest.fixture
def orm(recording: Recording) -> Iterator[Recording]:
    assert ats_sqlalchemy.instrumentor.instrument() is True
    try:
        yield recording
    finally:
        assert ats_sqlalchemy.instrumentor.uninstrument() is True


def _url(driver: str, server: Server) -> str:
    return f"{driver}://{server.user}:{server.password}@{server.host}:{server.port}/{server.database}"


def _logs(rec: Recording) -> list[dict[str, Any]]:
    assert rec.pipeline.flush(5.0)
    out: list[dict[str, Any]] = []
    for path in sorted((rec.root / "jsonl").glob("*.jsonl")):
        out.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return [r for r in out if r["kind"] == "log"]


def _statements(rec: Recording, skip: int) -> list[tuple[str, str, str | None, str | None]]:
    return [
        (s["evt"], s["component"], _attrs(s).get("db.statement"), _attrs(s).get("sqlx.class"))
        for s in rec.spans()[skip:]
    ]


def _workload(conn: Any, create: str, insert: str) -> None:
    conn.exec_driver_sql(create)
    conn.exec_driver_sql(
        f"{insert} ('{LITERAL_NAME}', '{LITERAL_EMAIL}') /* password={SECRET} */"
    )
    rows = conn.execute(sa.text("SELECT name FROM ats_users WHERE email = :e"), {"e": LITERAL_EMAIL}).all()
    assert rows == [(LITERAL_NAME,)]


def test_psycopg_one_span_per_statement_merged(orm: Recording, pg: Server) -> None:
    assert ats_psycopg.instrumentor.instrument() is True
    try:
        engine = sa.create_engine(_url("postgresql+psycopg", pg), pool_size=2)
        with engine.connect() as conn:  # first connect: dialect initialisation queries
            pass
        skip = len(orm.spans())
        with engine.connect() as conn:
            _workload(conn, "CREATE TEMP TABLE ats_users (name text, email text UNIQUE)",
                      "INSERT INTO ats_users (name, email) VALUES")
            with pytest.raises(sa.exc.ProgrammingError):
                conn.exec_driver_sql("SELECT * FROM nowhere")
            conn.rollback()
        engine.dispose()
    finally:
        assert ats_psycopg.instrumentor.uninstrument() is True
    spans = orm.spans()[skip:]
    got = _statements(orm, skip)
    assert got == [
        ("driver.query.ok", "ats-sqlalchemy", "CREATE TEMP TABLE ats_users (name text, email text UNIQUE)", "S"),
        ("driver.query.ok", "ats-sqlalchemy", "INSERT INTO ats_users (name, email) VALUES (?, ?)", "L"),
        ("driver.query.ok", "ats-sqlalchemy", "SELECT name FROM ats_users WHERE email = %(e)s", "L"),
        ("driver.query.error", "ats-sqlalchemy", "SELECT * FROM nowhere", "L"),
        ("driver.query.ok", "ats-sqlalchemy", "ROLLBACK", "L"),
        ("driver.close.ok", "ats-psycopg", None, None),
    ], got
    failing = _attrs(spans[3])
    assert failing["error.type"] == "UndefinedTable"  # the driver's class, not SQLAlchemy's
    assert failing["db.response.status_code"] == "42P01"
    assert (failing["server.address"], failing["server.port"], failing["db.namespace"]) == (
        pg.host, pg.port, pg.database)
    assert _attrs(spans[1])["db.response.returned_rows"] == 1
    assert _attrs(spans[2])["db.response.returned_rows"] == 1
    orm.assert_no_literals()


def test_without_a_driver_plugin_sqlalchemy_alone_records_one_span(orm: Recording, pg: Server) -> None:
    engine = sa.create_engine(_url("postgresql+psycopg", pg))
    with engine.connect() as conn:
        pass
    skip = len(orm.spans())
    with engine.connect() as conn:
        with pytest.raises(sa.exc.ProgrammingError):
            conn.exec_driver_sql("SELECT * FROM nowhere")
    engine.dispose()
    spans = orm.spans()[skip:]
    assert [(s["evt"], s["component"]) for s in spans] == [
        ("driver.query.error", "ats-sqlalchemy"), ("driver.query.ok", "ats-sqlalchemy"),
    ]
    failing = _attrs(spans[0])
    assert (failing["error.type"], failing["db.response.status_code"]) == ("UndefinedTable", "42P01")
    assert _attrs(spans[1])["db.statement"] == "ROLLBACK"  # the pool's reset on return


def test_asyncpg_async_engine_one_span_per_statement(orm: Recording, pg: Server) -> None:
    assert ats_asyncpg.instrumentor.instrument() is True

    async def main() -> int:
        engine = create_async_engine(_url("postgresql+asyncpg", pg))
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        skip = len(orm.spans())
        async with engine.connect() as conn:
            await conn.exec_driver_sql("CREATE TEMP TABLE ats_t (a int)")
            await conn.exec_driver_sql("INSERT INTO ats_t VALUES (1), (2)")
            with pytest.raises(sa.exc.ProgrammingError):
                await conn.exec_driver_sql("SELECT * FROM nowhere")
            await conn.rollback()
        await engine.dispose()
        return skip

    try:
        skip = asyncio.run(main())
    finally:
        assert ats_asyncpg.instrumentor.uninstrument() is True
    spans = orm.spans()[skip:]
    got = [(s["evt"], s["component"], _attrs(s).get("db.statement")) for s in spans]
    assert got == [
        ("driver.query.ok", "ats-sqlalchemy", "CREATE TEMP TABLE ats_t (a int)"),
        ("driver.query.ok", "ats-sqlalchemy", "INSERT INTO ats_t VALUES (?)"),
        ("driver.query.error", "ats-sqlalchemy", "SELECT * FROM nowhere"),
        ("driver.query.ok", "ats-sqlalchemy", "ROLLBACK"),
        ("driver.close.ok", "ats-asyncpg", None),
    ]
    assert _attrs(spans[2])["db.response.status_code"] == "42P01"
    assert _attrs(spans[0])["sqlx.class"] == "S"


def test_pymysql_one_span_per_statement(orm: Recording, mysql: Server) -> None:
    assert ats_pymysql.instrumentor.instrument() is True
    try:
        engine = sa.create_engine(_url("mysql+pymysql", mysql))
        with engine.connect() as conn:
            pass
        skip = len(orm.spans())
        with engine.connect() as conn:
            _workload(conn, "CREATE TEMPORARY TABLE ats_users (name text, email varchar(64))",
                      "INSERT INTO ats_users (name, email) VALUES")
            with pytest.raises(sa.exc.ProgrammingError):
                conn.exec_driver_sql("SELECT * FROM nowhere")
            conn.commit()
        engine.dispose()
    finally:
        assert ats_pymysql.instrumentor.uninstrument() is True
    spans = orm.spans()[skip:]
    got = [(s["evt"], s["component"], _attrs(s).get("db.statement"), _attrs(s).get("sqlx.class")) for s in spans]
    assert got == [
        ("driver.query.ok", "ats-sqlalchemy", "CREATE TEMPORARY TABLE ats_users (name text, email VARCHAR(?))", "S"),
        ("driver.query.ok", "ats-sqlalchemy", "INSERT INTO ats_users (name, email) VALUES (?, ?)", "L"),
        ("driver.query.ok", "ats-sqlalchemy", "SELECT name FROM ats_users WHERE email = %(e)s", "L"),
        ("driver.query.error", "ats-sqlalchemy", "SELECT * FROM nowhere", "L"),
        ("driver.query.ok", "ats-sqlalchemy", "COMMIT", "L"),
        ("driver.query.ok", "ats-sqlalchemy", "ROLLBACK", "L"),  # PyMySQL sends the pool's reset
        ("driver.close.ok", "ats-pymysql", None, None),
    ], got
    assert _attrs(spans[0])["db.system"] == "mysql"
    assert _attrs(spans[3])["error.type"] == "ProgrammingError"
    orm.assert_no_literals()


def _points(name: str) -> dict[tuple[tuple[str, str], ...], Any]:
    return {tuple(sorted(p["labels"].items())): p for p in metrics.snapshot() if p["name"] == name}


def test_slo_rules_metrics_ddl_logs_and_pool_gauges(orm: Recording, pg: Server) -> None:
    import ats._runtime as runtime_mod

    rt = runtime_mod.current()
    rt.config = load_config({"slo": {"rules": [
        {"class": "A", "tables": ["report_*"]},
        {"class": "S", "operations": ["CREATE", "DROP"]},
    ], "default_class": "B"}})
    engine = sa.create_engine(_url("postgresql+psycopg", pg), pool_size=2)
    with engine.connect() as conn:
        pass
    skip = len(orm.spans())
    before = {k: p["count"] for k, p in _points("sqlx_exec_latency_ms").items()}
    c1 = engine.connect()
    c2 = engine.connect()
    levels = _points("sqlx_pool_active")
    name = f"{pg.host}:{pg.port}/{pg.database}"
    assert levels[(("dialect", "postgresql"), ("id", name))]["value"] == 2
    c2.close()
    assert _points("sqlx_pool_idle")[(("dialect", "postgresql"), ("id", name))]["value"] == 1
    count = _points("db.client.connection.count")
    assert count[(("db.client.connection.pool.name", name), ("db.client.connection.state", "used"))]["value"] == 1
    assert count[(("db.client.connection.pool.name", name), ("db.client.connection.state", "idle"))]["value"] == 1
    c1.exec_driver_sql("CREATE TEMP TABLE report_daily (a int)")
    c1.exec_driver_sql("SELECT a FROM report_daily")
    c1.exec_driver_sql("SELECT 1")
    with pytest.raises(sa.exc.ProgrammingError):
        c1.exec_driver_sql("DROP TABLE nowhere")
    c1.close()
    engine.dispose()
    spans = orm.spans()[skip:]
    classes = [(_attrs(s).get("db.statement"), _attrs(s).get("sqlx.class")) for s in spans]
    assert classes == [
        ("ROLLBACK", "B"),  # c2's return to the pool (no driver plugin here to say it was idle)
        ("CREATE TEMP TABLE report_daily (a int)", "A"),  # first rule wins
        ("SELECT a FROM report_daily", "A"),
        ("SELECT ?", "B"),
        ("DROP TABLE nowhere", "S"),
        ("ROLLBACK", "B"),
    ]
    after = {k: p["count"] for k, p in _points("sqlx_exec_latency_ms").items()}
    assert {k: after[k] - before.get(k, 0) for k in after} == {
        (("class", "A"),): 2, (("class", "B"),): 3, (("class", "S"),): 1,
    } | {k: 0 for k in after if k not in ((("class", "A"),), (("class", "B"),), (("class", "S"),))}
    ddl = [(r["evt"], r["trace_id"], r["span_id"], r["attributes"]) for r in _logs(orm)
           if r["evt"].startswith("ddl.")]
    assert [d[0] for d in ddl] == ["ddl.migration.ok", "ddl.migration.error"]
    for (evt, trace_id, span_id, attributes), span in zip(ddl, (spans[1], spans[4])):
        assert (trace_id, span_id) == (span["trace_id"], span["span_id"])
    assert ddl[1][3]["error.type"] == "UndefinedTable"


def test_sqlcommenter_on_and_off(orm: Recording, pg: Server) -> None:
    import ats._runtime as runtime_mod

    rt = runtime_mod.current()
    probe = "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    engine = sa.create_engine(_url("postgresql+psycopg", pg))
    parent = context.SpanContext("0af7651916cd43dd8448eb211c80319c", 0xB7AD6B7169203331)
    token = context.attach(parent)
    try:
        with engine.connect() as conn:
            seen_off = conn.exec_driver_sql(probe).scalar_one()
            conn.commit()  # pg_stat_activity is snapshotted once per transaction
            rt.config = load_config({"sqlcommenter": {"enabled": True}})
            seen_on = conn.exec_driver_sql(probe).scalar_one()
    finally:
        context.detach(token)
        engine.dispose()
    assert seen_off == probe
    assert seen_on == f"{probe} /*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/"
    recorded = [_attrs(s).get("db.statement") for s in orm.spans() if "pg_stat_activity" in str(_attrs(s))]
    assert recorded == [
        "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()",
    ]
    assert b"traceparent" not in orm.stored_bytes()
