"""ats-asyncpg against the real PostgreSQL of ci/services.sh, through the real native pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import asyncpg.connect_utils
import asyncpg.prepared_stmt
import pytest

import ats_asyncpg

from driver_support import attrs as _attrs
from driver_support import LITERAL_EMAIL, LITERAL_NAME, SECRET, Recording, Server

ORIGINAL_CONNECT_IMPL = asyncpg.connect_utils._connect
ORIGINAL_METHODS = {
    (cls, name): vars(cls)[name]
    for cls in (asyncpg.Connection, asyncpg.prepared_stmt.PreparedStatement)
    for name in ("execute", "executemany", "fetch", "fetchval", "fetchrow", "prepare", "close")
    if name in vars(cls)
}


@pytest.fixture
def traced(recording: Recording, pg: Server) -> Iterator[Recording]:
    assert ats_asyncpg.instrumentor.instrument() is True
    try:
        yield recording
    finally:
        assert ats_asyncpg.instrumentor.uninstrument() is True


def _kw(pg: Server) -> dict[str, Any]:
    return {"host": pg.host, "port": pg.port, "user": pg.user, "password": pg.password, "database": pg.database}


def test_connection_spans_prepare_and_redaction(traced: Recording, pg: Server) -> None:
    from asyncpg import connect

    async def main() -> None:
        conn = await connect(**_kw(pg))
        await conn.execute("CREATE TEMP TABLE users (id serial PRIMARY KEY, name text, email text UNIQUE)")
        await conn.execute(
            f"INSERT INTO users (name, email) VALUES ('{LITERAL_NAME}', '{LITERAL_EMAIL}')"
            f" /* password={SECRET} */"
        )
        await conn.executemany("INSERT INTO users (name, email) VALUES ($1, $2)", [("a", "a@x"), ("b", "b@x")])
        rows = await conn.fetch("SELECT name FROM users WHERE email = $1", LITERAL_EMAIL)
        assert [r["name"] for r in rows] == [LITERAL_NAME]
        assert await conn.fetchval("SELECT count(*) FROM users") == 3
        assert (await conn.fetchrow("SELECT 1 AS one"))["one"] == 1
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(f"INSERT INTO users (name, email) VALUES ('x', '{LITERAL_EMAIL}')")
        stmt = await conn.prepare("SELECT name FROM users WHERE id = $1")
        assert await stmt.fetchval(1) == LITERAL_NAME
        assert len(await stmt.fetch(2)) == 1
        async with conn.transaction():
            await conn.execute("UPDATE users SET name = $1 WHERE id = 1", "n")
        await conn.close()

    asyncio.run(main())
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.ok",  # CREATE
        "driver.query.ok",  # INSERT literals
        "driver.query.ok",  # executemany
        "driver.query.ok",  # fetch
        "driver.query.ok",  # fetchval
        "driver.query.ok",  # fetchrow
        "driver.query.error",
        "driver.prepare.ok",
        "driver.query.ok",  # stmt.fetchval
        "driver.query.ok",  # stmt.fetch
        "driver.query.ok",  # BEGIN
        "driver.query.ok",  # UPDATE
        "driver.query.ok",  # COMMIT
        "driver.close.ok",
    ]
    for span in spans:
        attrs = _attrs(span)
        assert span["component"] == "ats-asyncpg"
        assert attrs["db.system.name"] == "postgresql"
        assert attrs["db.namespace"] == pg.database
        assert attrs["server.address"] == attrs["net.peer.name"] == pg.host
        assert attrs["server.port"] == attrs["net.peer.port"] == pg.port
    assert _attrs(spans[2])["db.statement"] == "INSERT INTO users (name, email) VALUES (?, ?)"
    assert _attrs(spans[2])["db.response.returned_rows"] == 1
    assert _attrs(spans[4])["db.query.summary"] == "SELECT users"
    assert _attrs(spans[4])["db.response.returned_rows"] == 1
    assert (_attrs(spans[7])["error.type"], _attrs(spans[7])["db.response.status_code"]) == (
        "UniqueViolationError",
        "23505",
    )
    prepare = _attrs(spans[8])
    assert prepare["db.statement"] == "SELECT name FROM users WHERE id = $1"
    assert prepare["db.sqlx.air_id"] == _attrs(spans[9])["db.sqlx.air_id"]
    assert _attrs(spans[10])["db.response.returned_rows"] == 1
    assert [_attrs(s)["db.operation"] for s in spans[11:14]] == ["BEGIN", "UPDATE", "COMMIT"]
    assert _attrs(spans[12])["db.response.returned_rows"] == 1
    traced.assert_no_literals()


def test_failing_query_and_handshake(traced: Recording, pg: Server) -> None:
    async def main() -> None:
        conn = await asyncpg.connect(**_kw(pg))
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.fetch("SELECT * FROM no_such_table WHERE id = 42")
        await conn.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(**{**_kw(pg), "password": "wrong"})

    asyncio.run(main())
    spans = traced.spans()
    assert [s["evt"] for s in spans] == [
        "driver.handshake.ok",
        "driver.query.error",
        "driver.close.ok",
        "driver.handshake.error",
    ]
    assert (_attrs(spans[1])["error.type"], _attrs(spans[1])["db.response.status_code"]) == (
        "UndefinedTableError",
        "42P01",
    )
    assert (_attrs(spans[3])["error.type"], _attrs(spans[3])["db.response.status_code"]) == (
        "InvalidPasswordError",
        "28P01",
    )
    assert _attrs(spans[3])["server.port"] == pg.port


def test_pool(traced: Recording, pg: Server) -> None:
    async def main() -> None:
        pool = await asyncpg.create_pool(min_size=1, max_size=1, **_kw(pg))
        assert await pool.fetchval("SELECT 40 + 2") == 42
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        await pool.close()

    asyncio.run(main())
    spans = traced.spans()
    # One pooled connection: each release runs the pool's reset query through execute().
    reset = "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL"
    assert [(s["evt"], _attrs(s).get("db.statement")) for s in spans] == [
        ("driver.handshake.ok", None),
        ("driver.query.ok", "SELECT ? + ?"),
        ("driver.query.ok", reset),
        ("driver.query.ok", "SELECT ?"),
        ("driver.query.ok", reset),
        ("driver.close.ok", None),
    ]
    assert {s["component"] for s in spans} == {"ats-asyncpg"}


def test_uninstrument_restores_originals(recording: Recording, pg: Server) -> None:
    assert ats_asyncpg.instrumentor.instrument() is True
    assert asyncpg.connect_utils._connect is not ORIGINAL_CONNECT_IMPL
    assert ats_asyncpg.instrumentor.uninstrument() is True
    assert asyncpg.connect_utils._connect is ORIGINAL_CONNECT_IMPL
    for (cls, name), original in ORIGINAL_METHODS.items():
        assert vars(cls)[name] is original, (cls, name)

    async def main() -> None:
        conn = await asyncpg.connect(**_kw(pg))
        await conn.fetchval("SELECT 1")
        await conn.close()

    asyncio.run(main())
    assert recording.spans() == []


def test_pool_gauges(traced: Recording, pg: Server) -> None:
    from ats import metrics

    def levels(name: str) -> dict[tuple[tuple[str, str], ...], Any]:
        return {tuple(sorted(p["labels"].items())): p["value"] for p in metrics.snapshot() if p["name"] == name}

    key = (("dialect", "postgresql"), ("id", f"{pg.host}:{pg.port}/{pg.database}"))
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        pool = await asyncpg.create_pool(min_size=2, max_size=2, **_kw(pg))
        conn = await pool.acquire()
        seen.append((levels("sqlx_pool_active")[key], levels("sqlx_pool_idle")[key]))
        await pool.release(conn)
        seen.append((levels("sqlx_pool_active")[key], levels("sqlx_pool_idle")[key]))
        await pool.close()

    assert ats_asyncpg.pool_instrumentor.instrument() is True
    try:
        asyncio.run(main())
    finally:
        assert ats_asyncpg.pool_instrumentor.uninstrument() is True
    assert seen == [(1, 1), (0, 2)]
