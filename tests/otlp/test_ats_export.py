"""ATS's own OTLP export, end to end against the real collector (rotel): ``ats-run`` programs with
``OTEL_EXPORTER_OTLP_*`` set send spans, metrics and logs; the local store still gets everything.

These tests need the native OTLP exporter (``ats._native.Pipeline(..., otlp={...})``, built from
``Config.pipeline_kwargs()["otlp"]``); they fail until it is part of the extension.

What the collector must show, compared with the local store of the same run:

* every span of the store, with the same trace id, span id, parent span id and name (database
  spans: the OpenTelemetry name, the ATS name in ``sqlx.event``), the status
  code (error -> 2), and the store's attributes (sanitised ``db.statement`` / ``db.query.text``,
  ``db.sqlx.air_id``, ``error.type``...); the resource carries ``service.name`` and the tenant;
* the log record with its scrubbed body, severity number and the trace/span ids of its span;
* the driver and application metrics (monotonic sums, histograms with buckets), cumulative;
* no literal, secret or PII value anywhere in what the collector decoded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from otlp_harness import OtlpSink, Rotel, TlsFiles, TlsProxy

APPS = Path(__file__).parent / "apps"
BIN = Path(sys.executable).parent
LEAKS = ["carol.secret@example.org", "4111111111111111", "hunter2-zebra", "tok-99-balloon"]
BATCH = 256  # ATS_FLUSH_BATCH_MAX_RECORDS in these runs: the most a retry may duplicate


def ats_env(tmp_path: Path, **otel: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in list(env):
        if var.startswith(("OTEL_", "ATS_")):
            del env[var]
    env.update(APP_DIR=str(tmp_path), ATS_HOME=str(tmp_path / ".ats"), OTEL_SERVICE_NAME="shop",
               ATS_TENANT="acme", ATS_FLUSH_INTERVAL_MS="50", ATS_FLUSH_BATCH_MAX_RECORDS=str(BATCH),
               ATS_METRICS_INTERVAL_MS="1000", **otel)
    return env


def run(app: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ats-run"), sys.executable, str(APPS / app)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def store_spans(tmp_path: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(f"file:{tmp_path / '.ats' / 'ats.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT trace_id, span_id, parent_id, name, status, attributes, end_ns FROM spans_v").fetchall()
    finally:
        db.close()
    return [{"trace_id": t, "span_id": s, "parent_span_id": p or "", "name": n, "status": st,
             "attributes": json.loads(a), "end_ns": e} for t, s, p, n, st, a, e in rows]


def store_logs(tmp_path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{tmp_path / '.ats' / 'ats.db'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT trace_id, span_id, event, severity, body FROM logs_v").fetchall()
    finally:
        db.close()


def last_points(sink: OtlpSink) -> dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any]]:
    """The latest point of every series (name, attributes)."""
    out: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any]] = {}
    for p in sink.metrics():
        key = (p["name"], tuple(sorted(p["attributes"].items())))
        if key not in out or p.get("time_ns", 0) >= out[key].get("time_ns", 0):
            out[key] = p
    return out


def assert_shop_exported(tmp_path: Path, sink: OtlpSink, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "ats:" not in result.stderr, result.stderr
    ids = json.loads(result.stdout.strip().splitlines()[-1])
    stored = store_spans(tmp_path)
    assert len(stored) >= 6  # app.checkout, handshake, 4 queries (one failed), close
    sink.wait_spans(len(stored), timeout=30)
    sink.wait_logs(1, timeout=30)
    sink.wait_for(lambda s: any(p["name"] == "app_orders_total" for p in s.metrics()), timeout=30)

    # Spans: exactly the store's, same ids, names, statuses and attributes.
    got = {(s["trace_id"], s["span_id"]): s for s in sink.spans()}
    assert len(got) == len(stored)
    for row in stored:
        span = got[(row["trace_id"], row["span_id"])]
        # OTLP names database spans per the OpenTelemetry conventions (the summary); the ATS event
        # name travels as sqlx.event.
        expected_name = row["attributes"].get("db.query.summary", row["name"]) if row["name"] == "driver.query" \
            else row["name"]
        assert (span["name"], span["parent_span_id"]) == (expected_name, row["parent_span_id"])
        assert span["attributes"]["sqlx.event"] == row["name"]
        assert span["status_code"] == {"unset": 0, "ok": 1, "error": 2}[row["status"]]
        for key, value in row["attributes"].items():
            assert span["attributes"].get(key) == value, (row["name"], key)
        assert span["resource"]["service.name"] == "shop"
        assert "acme" in span["resource"].values(), span["resource"]
    checkout = got[(ids["trace_id"], ids["span_id"])]
    assert (checkout["name"], checkout["attributes"]["order_id"]) == ("app.checkout", 17)
    queries = [s for s in sink.spans() if "db.statement" in s["attributes"]]
    statements = sorted(s["attributes"]["db.statement"] for s in queries)
    assert statements == sorted([
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, card TEXT)",
        "INSERT INTO users (email, card) VALUES (?, ?)",
        "SELECT id FROM users WHERE email = ?",
        "SELECT * FROM no_such_table WHERE token = ?",
    ])
    for q in queries:
        assert q["attributes"]["db.sqlx.air_id"].startswith("air:Q-")
        assert q["attributes"]["db.query.text"] == q["attributes"]["db.statement"]
        assert q["trace_id"] == ids["trace_id"]
    failed = [q for q in queries if q["status_code"] == 2]
    assert len(failed) == 1 and failed[0]["attributes"]["error.type"] == "OperationalError"

    # Logs: scrubbed body, severity, correlation.
    (log,) = [r for r in sink.logs() if r["attributes"].get("attempt") == 2 or r["body"].startswith("payment")]
    assert (log["body"], log["severity_number"]) == ("payment for [EMAIL] retried", 13)
    assert (log["trace_id"], log["span_id"]) == (ids["trace_id"], ids["span_id"])
    assert store_logs(tmp_path) == [(ids["trace_id"], ids["span_id"], "app.event", 13, "payment for [EMAIL] retried")]

    # Metrics: the program's counter and the driver's histograms, cumulative.
    points = last_points(sink)
    orders = points[("app_orders_total", (("region", "eu"),))]
    assert (orders["type"], orders["value"], orders["monotonic"], orders["temporality"]) == ("sum", 3, True, 2)
    latency = points[("sqlx_driver_latency_ms", (("dialect", "sqlite"), ("op", "query")))]
    assert (latency["type"], latency["unit"], latency["count"], latency["temporality"]) == ("histogram", "ms", 4, 2)
    assert len(latency["bucket_counts"]) == len(latency["bounds"]) + 1 and sum(latency["bucket_counts"]) == 4
    errors = points[("sqlx_driver_errors_total", (("class", "OperationalError"), ("dialect", "sqlite")))]
    assert (errors["type"], errors["value"], errors["monotonic"]) == ("sum", 1, True)

    # Nothing the program's literals carried reached the collector.
    everything = json.dumps([sink.spans(), sink.logs(), sink.metrics()], default=str)
    for leak in LEAKS:
        assert leak not in everything


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_ats_run_exports_to_the_collector(tmp_path: Path, collector: Rotel, otlp_sink: OtlpSink,
                                          protocol: str) -> None:
    endpoint = collector.grpc_endpoint if protocol == "grpc" else collector.http_endpoint
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    assert_shop_exported(tmp_path, otlp_sink, run("shop.py", env))


def test_per_signal_endpoints_and_gzip(tmp_path: Path, collector: Rotel, otlp_sink: OtlpSink) -> None:
    base = collector.http_endpoint
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{base}/v1/traces",
                  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"{base}/v1/metrics",
                  OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{base}/v1/logs", OTEL_EXPORTER_OTLP_COMPRESSION="gzip",
                  OTEL_EXPORTER_OTLP_HEADERS="x-ats-test=1")
    assert_shop_exported(tmp_path, otlp_sink, run("shop.py", env))


def test_signal_turned_off_is_not_exported(tmp_path: Path, collector: Rotel, otlp_sink: OtlpSink) -> None:
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=collector.http_endpoint, OTEL_LOGS_EXPORTER="none",
                  OTEL_METRICS_EXPORTER="none")
    result = run("shop.py", env)
    assert result.returncode == 0, result.stderr
    stored = store_spans(tmp_path)
    otlp_sink.wait_spans(len(stored), timeout=30)
    time.sleep(1.5)  # longer than the flush and metric intervals: anything else would have arrived
    assert (len(otlp_sink.spans()), otlp_sink.logs(), otlp_sink.metrics()) == (len(stored), [], [])
    assert len(store_logs(tmp_path)) == 1  # the store still has everything


# --- TLS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_mtls(tmp_path: Path, tls_proxy: TlsProxy, tls: TlsFiles, otlp_sink: OtlpSink, protocol: str) -> None:
    endpoint = tls_proxy.grpcs_endpoint if protocol == "grpc" else tls_proxy.https_endpoint
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                  OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls.ca), OTEL_EXPORTER_OTLP_CLIENT_KEY=str(tls.client_key),
                  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(tls.client_cert))
    assert_shop_exported(tmp_path, otlp_sink, run("shop.py", env))


@pytest.mark.parametrize("client", ["none", "rogue"])
def test_tls_refused_client_never_hurts_the_program(tmp_path: Path, tls_proxy: TlsProxy, tls: TlsFiles,
                                                    otlp_sink: OtlpSink, client: str) -> None:
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=tls_proxy.https_endpoint,
                  OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls.ca), ATS_SHUTDOWN_TIMEOUT_S="2")
    if client == "rogue":
        env.update(OTEL_EXPORTER_OTLP_CLIENT_KEY=str(tls.rogue_key),
                   OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=str(tls.rogue_cert))
    started = time.monotonic()
    result = run("shop.py", env)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30  # shutdown keeps its deadline
    assert len(store_spans(tmp_path)) >= 6
    time.sleep(1.0)
    assert otlp_sink.spans() == []


# --- outage -----------------------------------------------------------------------------------------


def missing_report(stored: list[dict[str, Any]], got: list[dict[str, Any]], outage_start: int,
                   outage_end: int) -> str:
    """Which ticks never reached the collector, as ranges with their end times relative to the
    outage (ms), so a failure says whether they were lost at the stop, during, or after it."""
    end_of = {s["attributes"]["i"]: s["end_ns"] for s in stored}
    missing = sorted(set(end_of) - {x["attributes"]["i"] for x in got})
    ranges: list[list[int]] = []
    for i in missing:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    rel = lambda i: (end_of[i] - outage_start) // 1_000_000  # noqa: E731
    shown = ", ".join(f"{a}-{b} ({rel(a)}..{rel(b)} ms)" for a, b in ranges[:20])
    return (f"{len(missing)} of {len(end_of)} ticks never arrived; outage lasted "
            f"{(outage_end - outage_start) // 1_000_000} ms; missing (end time after outage start): {shown}")


def test_outage_everything_arrives_and_the_program_does_not_notice(
    tmp_path: Path, collector: Rotel, otlp_sink: OtlpSink
) -> None:
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=collector.http_endpoint, ATS_SHUTDOWN_TIMEOUT_S="20")
    proc = subprocess.Popen([str(BIN / "ats-run"), sys.executable, str(APPS / "ticker.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ticks = lambda s: [x for x in s.spans() if x["name"] == "app.tick"]  # noqa: E731
        otlp_sink.wait_for(lambda s: len(ticks(s)) >= 300, timeout=60)
        outage_start = time.time_ns()
        collector.stop()
        time.sleep(3.0)  # the program keeps recording while the collector is down
        collector.start()  # same ports
        outage_end = time.time_ns()
        time.sleep(2.0)
        (tmp_path / "stop").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "ats:" not in err, err
    n = int(out.strip().splitlines()[-1])
    assert n > 300

    # The local store has every tick.
    stored = [s for s in store_spans(tmp_path) if s["name"] == "app.tick"]
    assert sorted(s["attributes"]["i"] for s in stored) == list(range(n))

    # The collector too, in the end: every tick at least once, at most one batch twice.
    try:
        otlp_sink.wait_for(lambda s: len({x["attributes"]["i"] for x in ticks(s)}) >= n, timeout=90)
    except AssertionError:
        db = sqlite3.connect(f"file:{tmp_path / '.ats' / 'ats.db'}?mode=ro", uri=True)
        drops = db.execute("SELECT reason, count FROM drops").fetchall()
        db.close()
        raise AssertionError(f"{missing_report(stored, ticks(otlp_sink), outage_start, outage_end)}; "
                             f"drops: {drops}; spool: {sorted(p.name for p in tmp_path.rglob('*.otlp'))}; "
                             f"rotel: {collector.output()[-1500:]}") from None
    got = ticks(otlp_sink)
    assert sorted({x["attributes"]["i"] for x in got}) == list(range(n))
    assert len(got) - n <= BATCH
    by_id: dict[str, dict[str, Any]] = {}
    for x in got:  # a duplicate is the same span, not a different one with the same id
        assert by_id.setdefault(x["span_id"], x) == x

    # The program's own timing did not change while the collector was down (medians, loosely).
    timings = [json.loads(line) for line in (tmp_path / "timings.jsonl").read_text().splitlines()]
    before = [d for t, d in timings if t < outage_start]
    during = [d for t, d in timings if outage_start <= t <= outage_end]
    assert len(before) > 100 and len(during) > 100
    assert statistics.median(during) < 3 * statistics.median(before) + 200_000, (
        statistics.median(before), statistics.median(during))


def test_otel_instrumented_app_exports_sanitised_statements(tmp_path: Path, collector: Rotel,
                                                            otlp_sink: OtlpSink) -> None:
    """OpenTelemetry's sqlite3 instrumentation + ATSSpanProcessor + ATS's OTLP exporter: the
    collector gets OpenTelemetry's spans (same ids) with literal-free statements and air ids."""
    # ATS's own sqlite3 plugin stays off: OpenTelemetry's instrumentation makes these spans.
    env = ats_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=collector.http_endpoint, ATS_DISABLED_PLUGINS="sqlite3")
    result = subprocess.run([sys.executable, str(APPS / "otel_shop.py")], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ids = json.loads(result.stdout.strip().splitlines()[-1])
    spans = otlp_sink.wait_spans(4, timeout=30)
    assert len(spans) == 4, [s["name"] for s in spans]
    assert {s["trace_id"] for s in spans} == {ids["trace_id"]}
    queries = sorted((s for s in spans if "db.statement" in s["attributes"]), key=lambda s: s["start_ns"])
    assert [q["attributes"]["db.statement"] for q in queries] == [
        "CREATE TABLE users (id INTEGER, email TEXT)",
        "INSERT INTO users VALUES (?, ?)",
        "SELECT id FROM users WHERE email = ? OR id = ?",
    ]
    for q in queries:
        assert q["attributes"]["db.sqlx.air_id"].startswith("air:Q-")
        assert q["parent_span_id"] == ids["span_id"]
    everything = json.dumps([otlp_sink.spans(), otlp_sink.logs()], default=str)
    for leak in ("carol.secret@example.org", "4111111111111111"):
        assert leak not in everything
