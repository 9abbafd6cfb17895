"""Plans of slow reads and capability discovery, against the real PostgreSQL and MariaDB."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg.pq import TransactionStatus

import ats_psycopg
import ats_pymysql
from ats import capabilities, plans, side
from driver_support import LITERAL_NAME, Recording, Server

SLOW_MS = 100.0
SLEEP_S = 0.15  # > SLOW_MS


@contextlib.contextmanager
def planning(recording: Recording, monkeypatch: pytest.MonkeyPatch, *instrumentors: Any) -> Iterator[Recording]:
    """Plans on (threshold SLOW_MS, no per-air_id interval) with ``instrumentors`` instrumented; the
    stand-in runtime honours ``suppressed()`` like the real one, so side connections are not recorded."""
    import ats._runtime as runtime_mod

    rt = runtime_mod.current()
    monkeypatch.setattr(runtime_mod, "current", lambda: None if runtime_mod._SUPPRESSED.get() else rt)
    plans.reset()
    capabilities.reset()
    plans.configure(plans.PlanSettings(True, SLOW_MS, 0.0, 64))
    for instrumentor in instrumentors:
        assert instrumentor.instrument() is True
    try:
        yield recording
    finally:
        assert side.wait_idle(20.0)
        for instrumentor in reversed(instrumentors):
            instrumentor.uninstrument()
        plans.configure(plans.PlanSettings())
        capabilities.configure(False)
        plans.reset()
        capabilities.reset()


@pytest.fixture
def planned(recording: Recording, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    with planning(recording, monkeypatch, ats_psycopg.instrumentor, ats_pymysql.instrumentor) as rec:
        yield rec


def records(rec: Recording) -> list[dict[str, Any]]:
    assert side.wait_idle(20.0)
    assert rec.pipeline.flush(5.0)
    lines: list[dict[str, Any]] = []
    for path in sorted((rec.root / "jsonl").glob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return lines


def logs(rec: Recording, event: str) -> list[dict[str, Any]]:
    return [r for r in records(rec) if r["kind"] == "log" and r["evt"] == event]


def stored_plan_logs(rec: Recording) -> list[tuple[Any, ...]]:
    import store_reader

    db = store_reader.connect(rec.root / "store.db")
    try:
        return db.execute(
            "SELECT event, trace_id, span_id, air_id, plan_hash, body FROM logs_v"
            " WHERE event IN ('air.plan.ok', 'udr.compile.ok') ORDER BY ts_ns"
        ).fetchall()
    finally:
        db.close()


@pytest.fixture
def pg_table(pg: Server) -> Iterator[str]:
    """A real (not temporary: the side connection must see it) table with an index on name."""
    name = f"plan_items_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {name} (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute(f"INSERT INTO {name} (name) SELECT 'n' || g FROM generate_series(1, 20000) g")
        conn.execute(f"INSERT INTO {name} (name) VALUES (%s)", (LITERAL_NAME,))
        conn.execute(f"CREATE INDEX {name}_name ON {name} (name)")
        conn.execute(f"ANALYZE {name}")
    try:
        yield name
    finally:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def slow_read(table: str) -> str:
    return f"SELECT i.id FROM {table} i CROSS JOIN pg_sleep({SLEEP_S}) WHERE i.name = %s"


def test_slow_read_one_redacted_plan_linked_to_its_span(pg_table: str, planned: Recording, pg: Server) -> None:
    with psycopg.connect(pg.dsn) as conn:
        conn.execute(f"SELECT count(*) FROM {pg_table} WHERE name = %s", (LITERAL_NAME,))  # fast: no plan
        assert conn.execute(slow_read(pg_table), (LITERAL_NAME,)).fetchall() == [(20001,)]
        # the program's transaction is untouched: still open, on its own connection
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        assert side.wait_idle(20.0)
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        conn.rollback()
    found = logs(planned, "air.plan.ok")
    assert len(found) == 1
    plan = found[0]
    spans = [r for r in records(planned) if r["kind"] == "span"]
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok", "driver.query.ok", "driver.query.ok", "driver.query.ok", "driver.close.ok",
    ]  # fmt: skip  # no EXPLAIN, BEGIN READ ONLY or side handshake among the program's spans
    slow = spans[2]
    assert (plan["trace_id"], plan["span_id"]) == (slow["trace_id"], slow["span_id"])
    assert plan["air_id"] == slow["air_id"]
    assert plan["plan_hash"].startswith("ph:") and len(plan["plan_hash"]) == 19
    assert plan["component"] == "ats.plans" and plan["dialect"] == "postgresql"
    assert set(plan["attributes"]) == {"db.sqlx.plan_hash", "db.sqlx.plan_new", "db.sqlx.plan_cost"}
    assert plan["attributes"]["db.sqlx.plan_hash"] == plan["plan_hash"]
    assert plan["attributes"]["db.sqlx.plan_new"] is True
    assert plan["attributes"]["db.sqlx.plan_cost"] > 0
    body = json.loads(plan["body"])
    assert body[0]["Plan"]["Node Type"] == "Nested Loop"
    assert "?" in json.dumps(body)  # the filter's value became a placeholder
    assert stored_plan_logs(planned) == [
        ("air.plan.ok", slow["trace_id"], slow["span_id"], slow["air_id"], plan["plan_hash"], plan["body"])
    ]
    # `ats trace show` names the plan on the slow statement's line
    import sys

    from ats import cli

    # The CLI reads with Python's sqlite3: only once this process's writer is closed (store_reader.py).
    assert planned.pipeline.shutdown(5.0)
    db = cli._connect(planned.root / "store.db")
    try:
        trace = cli._resolve_trace(db, slow["trace_id"])
        text = cli.render_tree(trace, cli._load_spans(db, trace), cli._load_logs(db, trace), cli._glyphs(sys.stdout))
    finally:
        db.close()
    assert [line for line in text.splitlines() if "plan_hash=" in line] == [
        line for line in text.splitlines() if "driver.query" in line and f"plan_hash={plan['plan_hash']}" in line
    ]
    assert text.count(f"plan_hash={plan['plan_hash']}") == 1
    planned.assert_no_literals()


def test_writes_and_data_modifying_ctes_are_never_explained(pg_table: str, planned: Recording, pg: Server) -> None:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        before = conn.execute(f"SELECT count(*), sum(id) FROM {pg_table}").fetchone()
        conn.execute(f"INSERT INTO {pg_table} (name) SELECT %s FROM pg_sleep({SLEEP_S}) WHERE false", (LITERAL_NAME,))
        conn.execute(
            f"WITH d AS (DELETE FROM {pg_table} WHERE false RETURNING id) SELECT * FROM d, pg_sleep({SLEEP_S})"
        )
        conn.execute(f"UPDATE {pg_table} SET name = name WHERE id < 0 AND pg_sleep({SLEEP_S}) IS NOT NULL")
        conn.execute(f"SELECT id FROM {pg_table}, pg_sleep({SLEEP_S}) WHERE id = 1 FOR UPDATE")
        assert conn.execute(f"SELECT count(*), sum(id) FROM {pg_table}").fetchone() == before
    assert logs(planned, "air.plan.ok") == []
    assert side.stats()["failed"] == 0


def test_plan_regression_after_drop_index(pg_table: str, planned: Recording, pg: Server) -> None:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(slow_read(pg_table), (LITERAL_NAME,))
        assert side.wait_idle(20.0)
        conn.execute(slow_read(pg_table), (LITERAL_NAME,))  # same plan again: no regression
        assert side.wait_idle(20.0)
        conn.execute(f"DROP INDEX {pg_table}_name")
        conn.execute(f"ANALYZE {pg_table}")
        conn.execute(slow_read(pg_table), (LITERAL_NAME,))
    found = logs(planned, "air.plan.ok")
    assert len(found) == 3
    baseline, same, changed = found
    assert same["plan_hash"] == baseline["plan_hash"] != changed["plan_hash"]
    assert [p["attributes"]["db.sqlx.plan_new"] for p in found] == [True, False, True]
    assert same["body"] == ""  # each distinct plan is kept once
    assert "Index" in baseline["body"] and "Seq Scan" in changed["body"]
    regressions = logs(planned, "udr.compile.ok")
    assert len(regressions) == 1
    reg = regressions[0]
    assert reg["attributes"] == {
        "baseline_cost": baseline["attributes"]["db.sqlx.plan_cost"],
        "new_cost": changed["attributes"]["db.sqlx.plan_cost"],
        "regression": True,
        "baseline_plan_hash": baseline["plan_hash"],
        "action": "none",
    }
    assert reg["attributes"]["new_cost"] > reg["attributes"]["baseline_cost"]
    assert (reg["air_id"], reg["plan_hash"]) == (baseline["air_id"], changed["plan_hash"])
    assert (reg["trace_id"], reg["span_id"]) == (changed["trace_id"], changed["span_id"])
    assert reg["severity"] == 13
    planned.assert_no_literals()


def test_queue_full_drops_are_counted() -> None:
    worker = side.SideWorker(maxsize=1)
    gate = __import__("threading").Event()
    assert worker.submit(gate.wait)
    assert side.SideWorker.wait_idle(worker, 0.05) is False  # the gate holds the only slot...
    assert worker.submit(lambda: None)  # ...one job waits in the queue...
    assert worker.submit(lambda: None) is False  # ...and the next is dropped, counted
    assert (worker.submitted, worker.dropped) == (2, 1)
    gate.set()
    assert worker.wait_idle(5.0)


def test_mariadb_slow_read_plan(planned: Recording, mysql: Server) -> None:
    table = f"plan_items_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host=mysql.host, port=mysql.port, user=mysql.user, password=mysql.password,
                           database=mysql.database, autocommit=True)  # fmt: skip
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64), KEY (name))")
        cur.execute(f"INSERT INTO {table} (name) VALUES (%s), ('b'), ('c')", (LITERAL_NAME,))
        cur.execute(f"SELECT i.id FROM {table} i, (SELECT SLEEP({SLEEP_S}) AS z) s WHERE i.name = %s",
                    (LITERAL_NAME,))  # fmt: skip
        assert cur.fetchall() == ((1,),)
        assert side.wait_idle(20.0)
        cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()
    found = logs(planned, "air.plan.ok")
    assert len(found) == 1
    plan = found[0]
    assert plan["dialect"] == "mysql" and plan["plan_hash"].startswith("ph:")
    assert "query_block" in json.loads(plan["body"])
    assert plan["attributes"]["db.sqlx.plan_cost"] >= 1
    spans = [r for r in records(planned) if r["kind"] == "span"]
    # The slow read by its statement: on a loaded machine the CREATE or INSERT can take 100 ms too.
    slow = [s for s in spans if "SLEEP" in str(s["attributes"].get("db.query.text", ""))]
    assert len(slow) == 1 and slow[0]["duration_ms"] >= SLOW_MS and slow[0]["evt"] == "driver.query.ok"
    assert (slow[0]["trace_id"], slow[0]["span_id"]) == (plan["trace_id"], plan["span_id"])
    planned.assert_no_literals()


def _capability_records(rec: Recording) -> list[dict[str, Any]]:
    return [
        {"dialect": r["dialect"], **r["attributes"]}
        for r in logs(rec, "udr.capability.ok")
    ]


def test_postgresql_capabilities_once_per_server(planned: Recording, pg: Server) -> None:
    capabilities.configure(True)
    for _ in range(2):
        psycopg.connect(pg.dsn).close()
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        number = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    version = f"{number // 10000}.{number % 10000}"
    where = {"db.system.name": "postgresql", "server.address": pg.host, "server.port": pg.port,
             "db.namespace": pg.database, "version": version, "dialect": "postgresql"}  # fmt: skip
    generic = number >= 160000
    expected = [
        {"capability": "WINDOW", "supported": True, "evidence": "row_number() accepted", "confidence": 0.98},
        {"capability": "CTE", "supported": True, "evidence": "WITH accepted", "confidence": 0.98},
        {"capability": "RECURSIVE_CTE", "supported": True, "evidence": "WITH RECURSIVE accepted", "confidence": 0.98},
        {"capability": "JSON", "supported": True, "evidence": "json type accepted", "confidence": 0.98},
        {"capability": "JSONB", "supported": True, "evidence": "jsonb type accepted", "confidence": 0.98},
        {"capability": "GENERIC_PLAN", "supported": generic,
         "evidence": "EXPLAIN (GENERIC_PLAN) accepted" if generic else "EXPLAIN (GENERIC_PLAN) rejected (SyntaxError)",
         "confidence": 0.98 if generic else 0.95},
        {"capability": "RETURNING", "supported": True, "evidence": f"server_version_num={number} >= 80200",
         "confidence": 0.9},
        {"capability": "ON_CONFLICT", "supported": True, "evidence": f"server_version_num={number} >= 90500",
         "confidence": 0.9},
        {"capability": "MERGE", "supported": number >= 150000,
         "evidence": f"server_version_num={number} >= 150000", "confidence": 0.9},
    ]  # fmt: skip
    assert _capability_records(planned) == [{**where, **e} for e in expected]


def test_mariadb_capabilities_once_per_server(planned: Recording, mysql: Server) -> None:
    capabilities.configure(True)
    for _ in range(2):
        pymysql.connect(host=mysql.host, port=mysql.port, user=mysql.user, password=mysql.password,
                        database=mysql.database).close()  # fmt: skip
    conn = pymysql.connect(host=mysql.host, port=mysql.port, user=mysql.user, password=mysql.password,
                           database=mysql.database)  # fmt: skip
    try:
        cur = conn.cursor()
        cur.execute("SELECT VERSION()")
        text = cur.fetchone()[0]  # type: ignore[index]
    finally:
        conn.close()
    assert "MariaDB" in text
    parts = [int(p) for p in text.split("-")[0].split(".")]
    number = parts[0] * 10000 + parts[1] * 100 + parts[2]
    where = {"db.system.name": "mariadb", "server.address": mysql.host, "server.port": mysql.port,
             "db.namespace": mysql.database, "version": ".".join(map(str, parts)), "dialect": "mysql"}  # fmt: skip
    evidence = f"VERSION()={text} -> {number}"
    expected = [
        {"capability": "WINDOW", "supported": True, "evidence": "row_number() accepted", "confidence": 0.98},
        {"capability": "CTE", "supported": True, "evidence": "WITH accepted", "confidence": 0.98},
        {"capability": "RECURSIVE_CTE", "supported": True, "evidence": "WITH RECURSIVE accepted", "confidence": 0.98},
        {"capability": "JSON", "supported": True, "evidence": "JSON_OBJECT() accepted", "confidence": 0.98},
        {"capability": "RETURNING", "supported": number >= 100500, "evidence": f"{evidence} >= 100500",
         "confidence": 0.9},
        {"capability": "ON_DUPLICATE_KEY", "supported": True, "evidence": f"{evidence} >= 0", "confidence": 0.9},
    ]  # fmt: skip
    # the second connection is in the cache: one discovery for this server in this process
    assert _capability_records(planned) == [{**where, **e} for e in expected]


def test_plain_read_classification() -> None:
    from ats._native import normalize

    def read(sql: str) -> bool:
        n = normalize(sql, "postgresql")
        return plans.is_plain_read(n.text, n.operation)

    assert read("SELECT * FROM t WHERE a = 1")
    assert read("WITH x AS (SELECT 1) SELECT * FROM x")
    assert read("SELECT replace(name, 'a', 'b') FROM t")
    for sql in (
        "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t",
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "SELECT 1 INTO t2",
        "SELECT * FROM t FOR UPDATE", "SELECT * FROM t FOR SHARE", "SELECT 1; DROP TABLE t",
        "EXPLAIN ANALYZE SELECT 1", "CREATE TABLE t AS SELECT 1",
    ):  # fmt: skip
        assert not read(sql), sql


def test_asyncpg_slow_read_plan(pg_table: str, planned: Recording, pg: Server) -> None:
    import asyncio

    import asyncpg
    import ats_asyncpg

    assert ats_asyncpg.instrumentor.instrument() is True
    try:
        async def app() -> None:
            conn = await asyncpg.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password,
                                         database=pg.database)  # fmt: skip
            try:
                rows = await conn.fetch(
                    f"SELECT i.id FROM {pg_table} i CROSS JOIN pg_sleep({SLEEP_S}) WHERE i.name = $1", LITERAL_NAME
                )
                assert [tuple(r) for r in rows] == [(20001,)]
            finally:
                await conn.close()

        asyncio.run(app())
    finally:
        ats_asyncpg.instrumentor.uninstrument()
    found = logs(planned, "air.plan.ok")
    assert len(found) == 1
    assert found[0]["plan_hash"].startswith("ph:") and json.loads(found[0]["body"])[0]["Plan"]
    spans = [r for r in records(planned) if r["kind"] == "span" and r["evt"] == "driver.query.ok"]
    assert [(s["trace_id"], s["span_id"]) for s in spans] == [(found[0]["trace_id"], found[0]["span_id"])]
    planned.assert_no_literals()


def test_psycopg2_slow_read_plan(pg_table: str, planned: Recording, pg: Server) -> None:
    import ats_psycopg2
    import psycopg2

    assert ats_psycopg2.instrumentor.instrument() is True
    try:
        conn = psycopg2.connect(pg.dsn)
        try:
            cur = conn.cursor()
            cur.execute(slow_read(pg_table), (LITERAL_NAME,))
            assert cur.fetchall() == [(20001,)]
            assert side.wait_idle(20.0)
            assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
            conn.rollback()
        finally:
            conn.close()
    finally:
        ats_psycopg2.instrumentor.uninstrument()
    found = logs(planned, "air.plan.ok")
    assert len(found) == 1 and found[0]["plan_hash"].startswith("ph:")
    spans = [r for r in records(planned) if r["kind"] == "span" and r["evt"] == "driver.query.ok"]
    assert (spans[0]["trace_id"], spans[0]["span_id"]) == (found[0]["trace_id"], found[0]["span_id"])
    planned.assert_no_literals()
