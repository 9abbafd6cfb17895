"""Quick start: run real sqlite3 queries, record them through the ATS native pipeline into
the embedded store (./.ats/ats.db) and JSONL files (./.ats/jsonl/), then show what was stored.

Every literal, secret and e-mail address in the queries below is removed before anything
reaches a sink. (`ats-run` will do all of this for an unchanged program; see the issues.)
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from pathlib import Path

from ats import _native, privacy, sql

HOME = Path(os.environ.get("ATS_HOME", ".ats"))


def main() -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    metrics = _native.Metrics()
    latency = metrics.histogram("sqlx_driver_latency_ms", "ms")
    pipeline = _native.Pipeline(
        store_path=str(HOME / "ats.db"),
        jsonl_dir=str(HOME / "jsonl"),
        tenant="demo",
        workspace="local",
        metrics=metrics,
    )
    trace_id = secrets.token_hex(16)
    root_id = int.from_bytes(secrets.token_bytes(8), "big") | 1
    root_start = time.time_ns()

    db = sqlite3.connect(":memory:")
    statements = [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, plan TEXT)",
        "INSERT INTO users (email, plan) VALUES ('alice@example.com', 'pro'), ('bob@example.com', 'free')",
        "SELECT id, plan FROM users WHERE email = 'alice@example.com' /* api_key=sk-live-1234567890abcdef */",
        "UPDATE users SET plan = 'enterprise' WHERE id IN (1, 2, 3)",
        "SELECT count(*) FROM users WHERE plan <> 'free'",
    ]
    for text in statements:
        start = time.time_ns()
        status, error = 1, None
        try:
            db.execute(text)
        except sqlite3.Error as e:
            status, error = 2, str(e)
        end = time.time_ns()
        n = sql.normalize(text, "sqlite")
        attributes: dict[str, str | int | float | bool] = {
            "db.system": "sqlite",
            "db.system.name": "sqlite",
            "db.statement": n.text,
            "db.query.text": n.text,
            "db.operation": n.operation,
            "db.operation.name": n.operation,
            "db.query.summary": n.summary,
        }
        if n.tables:
            attributes["db.collection.name"] = n.tables[0]
        if error is not None:
            attributes["error.type"] = type(error).__name__
            attributes["error.message"] = privacy.scrub(error)
        pipeline.record_span(
            "driver.query", "quickstart", trace_id, int.from_bytes(secrets.token_bytes(8), "big") | 1, root_id,
            start, end, status, attributes, dialect="sqlite", air_id=n.air_id,
        )
        latency.record((end - start) / 1e6, {"dialect": "sqlite", "op": "query"})
    pipeline.record_span("app.main", "quickstart", trace_id, root_id, 0, root_start, time.time_ns(), 1)
    pipeline.emit_log("app.done", "quickstart", 9, privacy.scrub("finished for alice@example.com"), time.time_ns(),
                      trace_id, root_id)
    assert pipeline.shutdown(5.0), "pipeline did not drain in time"

    store = sqlite3.connect(HOME / "ats.db")
    print(f"trace {trace_id}: stored in {HOME / 'ats.db'}")
    rows = store.execute(
        "SELECT name, status, air_id, (end_ns - start_ns) / 1e6, json_extract(attributes, '$.\"db.statement\"')"
        " FROM spans_v WHERE trace_id = ? ORDER BY start_ns", (trace_id,)
    ).fetchall()
    for name, status, air_id, ms, statement in rows:
        print(f"  {name:<13} {status:<5} {ms:8.3f} ms  {air_id or '':<22}  {statement or ''}")
    for event, body in store.execute("SELECT event, body FROM logs_v WHERE trace_id = ?", (trace_id,)):
        print(f"  log {event}: {body}")
    for name, labels, value in store.execute("SELECT name, labels, value FROM metric_points ORDER BY ts_ns DESC LIMIT 1"):
        print(f"  metric {name} {labels} sum={value:.3f} ms")
    print(pipeline.stats()["dropped"])


if __name__ == "__main__":
    main()
