"""Issue 5 acceptance: a program using SQLAlchemy over psycopg against the real PostgreSQL
issues queries with literal values, a failing query and a slow query. Exactly one span per
statement, no literal in the store, the failure's SQLSTATE, a plan hash for the slow read, and a
``udr.compile.ok`` regression record once its index is dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

import ats_psycopg
import ats_sqlalchemy
from ats import side
from driver_support import LITERAL_EMAIL, LITERAL_NAME, SECRET, Recording, Server
from driver_support import attrs
from test_plans import SLEEP_S, logs, planning, stored_plan_logs


@pytest.fixture
def app(recording: Recording, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    with planning(recording, monkeypatch, ats_psycopg.instrumentor, ats_sqlalchemy.instrumentor) as rec:
        yield rec


def test_sqlalchemy_over_psycopg(app: Recording, pg: Server) -> None:
    table = f"accept_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(f"postgresql+psycopg://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}")
    slow = sa.text(f"SELECT i.id FROM {table} i CROSS JOIN pg_sleep({SLEEP_S}) WHERE i.name = :n")
    try:
        with engine.connect() as conn:  # dialect initialisation queries happen here
            pass
        skip = len(app.spans())
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text NOT NULL, email text)")
            conn.exec_driver_sql(f"INSERT INTO {table} (name) SELECT 'n' || g FROM generate_series(1, 20000) g")
            conn.exec_driver_sql(  # literals and a secret in a comment
                f"INSERT INTO {table} (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
                f" /* password={SECRET} */")
            conn.exec_driver_sql(f"CREATE INDEX {table}_name ON {table} (name)")
            conn.exec_driver_sql(f"ANALYZE {table}")
        with engine.connect() as conn:
            with pytest.raises(sa.exc.ProgrammingError):
                conn.execute(sa.text("SELECT * FROM no_such_table WHERE email = :e"), {"e": LITERAL_EMAIL})
            conn.rollback()
            assert conn.execute(slow, {"n": LITERAL_NAME}).all() == [(20001,)]
            assert side.wait_idle(20.0)
            conn.exec_driver_sql(f"DROP INDEX {table}_name")
            conn.exec_driver_sql(f"ANALYZE {table}")
            conn.commit()
            assert conn.execute(slow, {"n": LITERAL_NAME}).all() == [(20001,)]
            conn.commit()
        assert side.wait_idle(20.0)
        spans = app.spans()[skip:]
    finally:
        with psycopg.connect(pg.dsn, autocommit=True) as raw:
            raw.execute(f"DROP TABLE IF EXISTS {table}")
        engine.dispose()

    queries = [(s["evt"], s["component"], attrs(s).get("db.statement")) for s in spans if s["evt"].startswith("driver.query")]
    slow_text = f"SELECT i.id FROM {table} i CROSS JOIN pg_sleep(?) WHERE i.name = %(n)s"
    # Exactly one span per statement: each from the SQLAlchemy layer, none doubled by the driver's.
    assert queries == [
        ("driver.query.ok", "ats-sqlalchemy", f"CREATE TABLE {table} (id serial PRIMARY KEY, name text NOT NULL, email text)"),
        ("driver.query.ok", "ats-sqlalchemy", f"INSERT INTO {table} (name) SELECT ? || g FROM generate_series(?, ?) g"),
        ("driver.query.ok", "ats-sqlalchemy", f"INSERT INTO {table} (name, email) VALUES (?, ?)"),
        ("driver.query.ok", "ats-sqlalchemy", f"CREATE INDEX {table}_name ON {table} (name)"),
        ("driver.query.ok", "ats-sqlalchemy", f"ANALYZE {table}"),
        ("driver.query.ok", "ats-sqlalchemy", "COMMIT"),
        ("driver.query.error", "ats-sqlalchemy", "SELECT * FROM no_such_table WHERE email = %(e)s"),
        ("driver.query.ok", "ats-sqlalchemy", "ROLLBACK"),
        ("driver.query.ok", "ats-sqlalchemy", slow_text),
        ("driver.query.ok", "ats-sqlalchemy", f"DROP INDEX {table}_name"),
        ("driver.query.ok", "ats-sqlalchemy", f"ANALYZE {table}"),
        ("driver.query.ok", "ats-sqlalchemy", "COMMIT"),
        ("driver.query.ok", "ats-sqlalchemy", slow_text),
        ("driver.query.ok", "ats-sqlalchemy", "COMMIT"),
    ], queries
    failed = next(s for s in spans if s["evt"] == "driver.query.error")
    assert (attrs(failed)["error.type"], attrs(failed)["db.response.status_code"]) == ("UndefinedTable", "42P01")

    # The slow read's plan, linked to its span; the regression once the index is gone.
    slow_spans = [s for s in spans if attrs(s).get("db.statement") == slow_text]
    found = logs(app, "air.plan.ok")
    assert len(found) == 2
    assert [(p["trace_id"], p["span_id"]) for p in found] == [(s["trace_id"], s["span_id"]) for s in slow_spans]
    assert all(p["plan_hash"].startswith("ph:") for p in found)
    assert found[0]["plan_hash"] != found[1]["plan_hash"]
    [regression] = logs(app, "udr.compile.ok")
    assert regression["attributes"]["regression"] is True
    assert regression["attributes"]["new_cost"] > regression["attributes"]["baseline_cost"]
    assert (regression["span_id"], regression["plan_hash"]) == (slow_spans[1]["span_id"], found[1]["plan_hash"])
    assert [row[0] for row in stored_plan_logs(app)] == ["air.plan.ok", "air.plan.ok", "udr.compile.ok"]
    app.assert_no_literals()
