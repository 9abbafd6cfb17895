"""The collector harness itself, proven with the OpenTelemetry SDK's own OTLP exporters: what they
send through rotel (HTTP, gRPC, and TLS with client certificates through nginx) arrives decoded,
exactly."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from otlp_harness import OtlpSink, Rotel, TlsFiles, TlsProxy
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

RESOURCE = Resource.create({"service.name": "harness", "deployment.environment": "test"})


def emit_trace(exporter: SpanExporter) -> tuple[Any, Any]:
    """A root span and a failed child; returns both (ended)."""
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("harness.scope")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER,
                                      attributes={"order.id": 17, "ratio": 0.5, "ok": True, "tags": ["a", "b"]}) as root:
        with tracer.start_as_current_span("SELECT shop.users", kind=SpanKind.CLIENT,
                                          attributes={"db.query.text": "SELECT * FROM users WHERE id = ?"}) as child:
            child.record_exception(ValueError("boom"))
            child.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    return root, child


def assert_trace_received(sink: OtlpSink, root: Any, child: Any) -> None:
    got = {s["name"]: s for s in sink.wait_spans(2)}
    assert len(sink.spans()) == 2
    trace_hex = f"{root.context.trace_id:032x}"
    r, c = got["checkout"], got["SELECT shop.users"]
    assert (r["trace_id"], r["span_id"], r["parent_span_id"]) == (trace_hex, f"{root.context.span_id:016x}", "")
    assert (c["trace_id"], c["span_id"], c["parent_span_id"]) == (
        trace_hex, f"{child.context.span_id:016x}", f"{root.context.span_id:016x}")
    assert r["attributes"] == {"order.id": 17, "ratio": 0.5, "ok": True, "tags": ["a", "b"]}
    assert c["attributes"] == {"db.query.text": "SELECT * FROM users WHERE id = ?"}
    assert (r["kind"], c["kind"]) == (2, 3)  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT
    assert (r["status_code"], c["status_code"], c["status_message"]) == (0, 2, "boom")
    assert [e["name"] for e in c["events"]] == ["exception"]
    assert c["events"][0]["attributes"]["exception.type"] == "ValueError"
    assert c["events"][0]["attributes"]["exception.message"] == "boom"
    assert (r["start_ns"], r["end_ns"]) == (root.start_time, root.end_time)
    assert r["scope"] == "harness.scope"
    assert r["resource"]["service.name"] == "harness"
    assert r["resource"]["deployment.environment"] == "test"


def test_traces_over_http(collector: Rotel, otlp_sink: OtlpSink) -> None:
    root, child = emit_trace(HttpSpanExporter(endpoint=f"{collector.http_endpoint}/v1/traces"))
    assert_trace_received(otlp_sink, root, child)


def test_traces_over_grpc(collector: Rotel, otlp_sink: OtlpSink) -> None:
    root, child = emit_trace(GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True))
    assert_trace_received(otlp_sink, root, child)


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_metrics(collector: Rotel, otlp_sink: OtlpSink, transport: str) -> None:
    exporter = (HttpMetricExporter(endpoint=f"{collector.http_endpoint}/v1/metrics") if transport == "http"
                else GrpcMetricExporter(endpoint=collector.grpc_endpoint, insecure=True))
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("harness.meter")
    counter = meter.create_counter("sqlx_exec_total", unit="1")
    hist = meter.create_histogram("sqlx_exec_latency_ms", unit="ms",
                                  explicit_bucket_boundaries_advisory=[1.0, 10.0, 100.0])
    counter.add(3, {"class": "L"})
    counter.add(4, {"class": "L"})
    counter.add(1, {"class": "B"})
    for v in (0.5, 5.0, 50.0, 500.0, 7.0):
        hist.record(v, {"class": "L"})
    provider.shutdown()
    otlp_sink.wait_for(lambda s: len(s.metrics()) >= 3)
    points = sorted(((p["name"], tuple(sorted(p["attributes"].items()))), p) for p in otlp_sink.metrics())
    assert [k for k, _ in points] == [
        ("sqlx_exec_latency_ms", (("class", "L"),)),
        ("sqlx_exec_total", (("class", "B"),)),
        ("sqlx_exec_total", (("class", "L"),)),
    ]
    h, b, lc = (p for _, p in points)
    assert (b["type"], b["value"], b["monotonic"], b["temporality"], b["unit"]) == ("sum", 1, True, 2, "1")
    assert (lc["value"], lc["scope"], lc["resource"]["service.name"]) == (7, "harness.meter", "harness")
    assert (h["type"], h["unit"], h["count"], h["sum"]) == ("histogram", "ms", 5, 562.5)
    assert (h["bounds"], h["bucket_counts"]) == ([1.0, 10.0, 100.0], [1, 2, 1, 1])


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_logs(collector: Rotel, otlp_sink: OtlpSink, transport: str) -> None:
    exporter = (HttpLogExporter(endpoint=f"{collector.http_endpoint}/v1/logs") if transport == "http"
                else GrpcLogExporter(endpoint=collector.grpc_endpoint, insecure=True))
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logging.getLogger(f"harness.logs.{transport}")
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    log.addHandler(handler)
    tracer_provider = TracerProvider()
    try:
        with tracer_provider.get_tracer("t").start_as_current_span("job") as span:
            log.warning("disk %s%% full", 91)
        log.info("done")
    finally:
        log.removeHandler(handler)
        provider.shutdown()
    got = otlp_sink.wait_logs(2)
    assert [(r["body"], r["severity_number"], r["severity_text"]) for r in got] == [
        ("disk 91% full", 13, "WARN"), ("done", 9, "INFO")]
    ctx = span.get_span_context()
    assert (got[0]["trace_id"], got[0]["span_id"]) == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert (got[1]["trace_id"], got[1]["span_id"]) == ("", "")
    assert got[0]["resource"]["service.name"] == "harness"


def test_collector_restarts_on_the_same_ports(collector: Rotel, otlp_sink: OtlpSink) -> None:
    endpoint = f"{collector.http_endpoint}/v1/traces"
    root1, child1 = emit_trace(HttpSpanExporter(endpoint=endpoint))
    otlp_sink.wait_spans(2)
    collector.stop()
    down = HttpSpanExporter(endpoint=endpoint, timeout=2)
    assert down.export([root1]) == SpanExportResult.FAILURE
    collector.start()
    root2, _child2 = emit_trace(HttpSpanExporter(endpoint=endpoint))
    spans = otlp_sink.wait_spans(4)
    assert sorted(s["span_id"] for s in spans) == sorted(
        f"{s.context.span_id:016x}" for s in (root1, child1, root2, _child2))


# --- TLS with client certificates (nginx in front of rotel) ------------------------------------


@pytest.fixture
def grpc_credentials(tls: TlsFiles) -> Iterator[grpc.ChannelCredentials]:
    yield grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(), private_key=tls.client_key.read_bytes(),
        certificate_chain=tls.client_cert.read_bytes())


def test_mtls_over_http(tls_proxy: TlsProxy, tls: TlsFiles, otlp_sink: OtlpSink) -> None:
    exporter = HttpSpanExporter(endpoint=f"{tls_proxy.https_endpoint}/v1/traces", certificate_file=str(tls.ca),
                                client_key_file=str(tls.client_key), client_certificate_file=str(tls.client_cert))
    root, child = emit_trace(exporter)
    assert_trace_received(otlp_sink, root, child)


def test_mtls_over_grpc(tls_proxy: TlsProxy, otlp_sink: OtlpSink, grpc_credentials: grpc.ChannelCredentials) -> None:
    root, child = emit_trace(GrpcSpanExporter(endpoint=tls_proxy.grpcs_endpoint, credentials=grpc_credentials))
    assert_trace_received(otlp_sink, root, child)


@pytest.mark.parametrize("client", ["none", "rogue"])
def test_tls_refuses_clients_without_a_trusted_certificate(
    tls_proxy: TlsProxy, tls: TlsFiles, otlp_sink: OtlpSink, client: str
) -> None:
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("refused")
    span.end()
    kw: dict[str, Any] = {"certificate_file": str(tls.ca), "timeout": 5}
    if client == "rogue":
        kw.update(client_key_file=str(tls.rogue_key), client_certificate_file=str(tls.rogue_cert))
    http_result = HttpSpanExporter(endpoint=f"{tls_proxy.https_endpoint}/v1/traces", **kw).export([span])
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        **({"private_key": tls.rogue_key.read_bytes(), "certificate_chain": tls.rogue_cert.read_bytes()}
           if client == "rogue" else {}))
    grpc_result = GrpcSpanExporter(endpoint=tls_proxy.grpcs_endpoint, credentials=creds, timeout=5).export([span])
    assert (http_result, grpc_result) == (SpanExportResult.FAILURE, SpanExportResult.FAILURE)
    # And a trusted client on the same proxy still gets through.
    ok = HttpSpanExporter(endpoint=f"{tls_proxy.https_endpoint}/v1/traces", certificate_file=str(tls.ca),
                          client_key_file=str(tls.client_key), client_certificate_file=str(tls.client_cert))
    assert ok.export([span]) == SpanExportResult.SUCCESS
    assert [s["name"] for s in otlp_sink.wait_spans(1)] == ["refused"]
