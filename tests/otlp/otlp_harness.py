"""A real OpenTelemetry collector for the OTLP tests: ``rotel`` (PyPI package ``rotel``, binary
``rotel-agent``) on free loopback ports, and nginx in front of it for TLS with client certificates.

How tests read what the collector decoded: rotel receives OTLP (HTTP and gRPC), decodes it,
batches it and forwards it with its own OTLP/HTTP exporter to :class:`OtlpSink`, a small HTTP
server in the test process that decodes each request with the ``opentelemetry-proto`` messages
and keeps plain dicts (names, hex ids, attributes, values). Nothing is parsed from logs.

Fixtures:

``otlp_sink``   :class:`OtlpSink` — ``spans()``, ``metrics()``, ``logs()``, ``wait_for(...)``
``collector``   :class:`Rotel`, started (``http_endpoint``, ``grpc_endpoint``, ``stop()``,
                ``start()`` on the same ports, ``sink``)
``tls``         :class:`TlsFiles` — CA, server and client certificates generated in the test
                (plus a client certificate from another CA that must be refused)
``tls_proxy``   :class:`TlsProxy` — nginx terminating TLS and verifying client certificates in
                front of ``collector`` (``https_endpoint`` for OTLP/HTTP, ``grpcs_endpoint`` for
                OTLP/gRPC)

A missing rotel or nginx makes these fixtures fail, never skip (``ci/install.sh`` installs both).
Every process runs in the foreground (no ``--daemon``) and is stopped by its fixture.
"""

from __future__ import annotations

import datetime
import gzip
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

Dict = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# --- decoding -------------------------------------------------------------------------------------


def any_value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    if kind == "bytes_value":
        return bytes(v.bytes_value)
    return getattr(v, kind)


def attributes(kvs: Any) -> Dict:
    out: Dict = {}
    for kv in kvs:
        assert isinstance(kv, KeyValue)
        out[kv.key] = any_value(kv.value)
    return out


def _items(resources: Any, scopes: str, items: str) -> Iterator[tuple[Dict, Any]]:
    """Each item of an Export*ServiceRequest with the ``resource`` and ``scope`` it came under."""
    for r in resources:
        resource = attributes(r.resource.attributes)
        for sc in getattr(r, scopes):
            for item in getattr(sc, items):
                yield {"resource": resource, "scope": sc.scope.name}, item


def decode_spans(req: ExportTraceServiceRequest) -> list[Dict]:
    return [{
        **where, "name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
        "parent_span_id": s.parent_span_id.hex(), "kind": s.kind, "start_ns": s.start_time_unix_nano,
        "end_ns": s.end_time_unix_nano, "status_code": s.status.code, "status_message": s.status.message,
        "attributes": attributes(s.attributes),
        "events": [{"name": e.name, "attributes": attributes(e.attributes)} for e in s.events],
    } for where, s in _items(req.resource_spans, "scope_spans", "spans")]


def decode_metrics(req: ExportMetricsServiceRequest) -> list[Dict]:
    """One dict per data point."""
    out = []
    for where, m in _items(req.resource_metrics, "scope_metrics", "metrics"):
        base = {**where, "name": m.name, "unit": m.unit, "description": m.description}
        kind = m.WhichOneof("data")
        if kind == "sum":
            for p in m.sum.data_points:
                out.append({**base, "type": "sum", "monotonic": m.sum.is_monotonic,
                            "temporality": m.sum.aggregation_temporality,
                            "attributes": attributes(p.attributes), "value": _number(p),
                            "start_ns": p.start_time_unix_nano, "time_ns": p.time_unix_nano})
        elif kind == "gauge":
            for p in m.gauge.data_points:
                out.append({**base, "type": "gauge", "attributes": attributes(p.attributes),
                            "value": _number(p), "time_ns": p.time_unix_nano})
        elif kind == "histogram":
            for p in m.histogram.data_points:
                out.append({**base, "type": "histogram", "temporality": m.histogram.aggregation_temporality,
                            "attributes": attributes(p.attributes), "count": p.count, "sum": p.sum,
                            "bounds": list(p.explicit_bounds), "bucket_counts": list(p.bucket_counts),
                            "start_ns": p.start_time_unix_nano, "time_ns": p.time_unix_nano})
        else:
            out.append({**base, "type": kind})
    return out


def _number(p: Any) -> int | float:
    value: int | float = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
    return value


def decode_logs(req: ExportLogsServiceRequest) -> list[Dict]:
    return [{
        **where, "body": any_value(r.body), "severity_number": r.severity_number,
        "severity_text": r.severity_text, "trace_id": r.trace_id.hex(), "span_id": r.span_id.hex(),
        "time_ns": r.time_unix_nano, "event_name": r.event_name, "attributes": attributes(r.attributes),
    } for where, r in _items(req.resource_logs, "scope_logs", "log_records")]


_DECODERS: dict[str, tuple[type[Any], Callable[[Any], list[Dict]]]] = {
    "/v1/traces": (ExportTraceServiceRequest, decode_spans),
    "/v1/metrics": (ExportMetricsServiceRequest, decode_metrics),
    "/v1/logs": (ExportLogsServiceRequest, decode_logs),
}


# --- the receiving end ----------------------------------------------------------------------------


class OtlpSink:
    """An OTLP/HTTP (protobuf) receiver in the test process; rotel exports to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, list[Dict]] = {path: [] for path in _DECODERS}
        self.requests: dict[str, int] = {path: 0 for path in _DECODERS}
        self.errors: list[str] = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding", "") == "gzip":
                    body = gzip.decompress(body)
                entry = _DECODERS.get(self.path)
                if entry is None:
                    sink.errors.append(f"unexpected path {self.path}")
                    self.send_response(404)
                    self.end_headers()
                    return
                cls, decode = entry
                try:
                    req = cls()
                    req.ParseFromString(body)
                    items = decode(req)
                except Exception as exc:  # recorded: the test then fails on sink.errors
                    sink.errors.append(f"{self.path}: {exc!r}")
                    self.send_response(400)
                    self.end_headers()
                    return
                with sink._lock:
                    sink._items[self.path].extend(items)
                    sink.requests[self.path] += 1
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")  # an empty Export*ServiceResponse: full success
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _get(self, path: str) -> list[Dict]:
        with self._lock:
            return list(self._items[path])

    def spans(self) -> list[Dict]:
        """Every span received so far (plain dicts, hex ids), in arrival order."""
        return self._get("/v1/traces")

    def metrics(self) -> list[Dict]:
        """Every metric data point received so far."""
        return self._get("/v1/metrics")

    def logs(self) -> list[Dict]:
        """Every log record received so far."""
        return self._get("/v1/logs")

    def wait_for(self, what: Callable[[OtlpSink], bool], timeout: float = 20.0) -> None:
        """Waits until ``what(sink)`` holds; fails the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not what(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"collector output not reached within {timeout}s: {len(self.spans())} spans, "
                    f"{len(self.metrics())} metric points, {len(self.logs())} logs; errors: {self.errors}")
            time.sleep(0.05)

    def wait_spans(self, n: int, timeout: float = 20.0) -> list[Dict]:
        self.wait_for(lambda s: len(s.spans()) >= n, timeout)
        return self.spans()

    def wait_logs(self, n: int, timeout: float = 20.0) -> list[Dict]:
        self.wait_for(lambda s: len(s.logs()) >= n, timeout)
        return self.logs()


def rotel_binary() -> str:
    import rotel  # the PyPI package ships the binary beside its module

    path = Path(rotel.__file__).resolve().parent / "rotel-agent"
    if not path.is_file():
        raise RuntimeError(f"rotel-agent not found at {path} (pip install rotel; ci/requirements-test.txt)")
    return str(path)


class Rotel:
    """One rotel collector in the foreground, forwarding everything it decodes to ``sink``."""

    def __init__(self, sink: OtlpSink, workdir: Path) -> None:
        self.sink = sink
        self.workdir = workdir
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def http_endpoint(self) -> str:
        """Base URL for OTLP/HTTP (``/v1/traces`` etc. are appended by the clients)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self) -> None:
        """Starts rotel on this object's ports (the same ports after a :meth:`stop`)."""
        assert self.proc is None, "already running"
        self.starts += 1
        log = self.workdir / f"rotel-{self.starts}.out"
        cmd = [
            rotel_binary(), "start",
            "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
            "--exporter", "otlp", "--otlp-exporter-endpoint", self.sink.url, "--otlp-exporter-protocol", "http",
            "--otlp-exporter-retry-initial-backoff", "100ms", "--otlp-exporter-retry-max-backoff", "1s",
            "--batch-timeout", "50ms",
            "--pid-file", str(self.workdir / "rotel.pid"), "--log-file", str(self.workdir / "rotel.log"),
        ]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            wait_listening(self.http_port, proc=self.proc)
            wait_listening(self.grpc_port, proc=self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"rotel did not start: {log.read_text(errors='replace')[-2000:]}") from None

    def stop(self) -> None:
        """Stops rotel (SIGTERM, then SIGKILL after 10 s); what it already forwarded stays in the sink."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("rotel-*.out")))


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.close()


@pytest.fixture
def collector(otlp_sink: OtlpSink, tmp_path: Path) -> Iterator[Rotel]:
    workdir = tmp_path / "rotel"
    workdir.mkdir()
    rotel = Rotel(otlp_sink, workdir)
    rotel.start()
    yield rotel
    rotel.stop()
    assert otlp_sink.errors == []


# --- TLS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate signed by another CA: must be refused
    rogue_key: Path


def _write_cert_set(d: Path) -> TlsFiles:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def build(subject: str, issuer: str, pub_key: Any, sign_key: Any, *, ca: bool,
              extensions: list[tuple[Any, bool]]) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(pub_key).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        for ext, critical in extensions:
            b = b.add_extension(ext, critical=critical)
        # Key identifiers: strict chain verification (Python 3.13's default) requires them.
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(pub_key), critical=False)
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(sign_key.public_key()), critical=False)
        return b.sign(sign_key, hashes.SHA256())

    def save(stem: str, cert: x509.Certificate, k: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
        c, kp = d / f"{stem}.pem", d / f"{stem}.key"
        c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        return c, kp

    ca_usage = (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False), True)
    ca_key, rogue_ca_key = key(), key()
    ca = build("ats-test-ca", "ats-test-ca", ca_key.public_key(), ca_key, ca=True, extensions=[ca_usage])
    rogue_ca = build("rogue-ca", "rogue-ca", rogue_ca_key.public_key(), rogue_ca_key, ca=True, extensions=[ca_usage])
    ca_path, _ = save("ca", ca, ca_key)
    save("rogue-ca", rogue_ca, rogue_ca_key)
    server_key, client_key, rogue_key = key(), key(), key()
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = build("localhost", "ats-test-ca", server_key.public_key(), ca_key, ca=False, extensions=[
        (san, False), (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)])
    client_eku = (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    client = build("ats-client", "ats-test-ca", client_key.public_key(), ca_key, ca=False, extensions=[client_eku])
    rogue = build("rogue-client", "rogue-ca", rogue_key.public_key(), rogue_ca_key, ca=False, extensions=[client_eku])
    server_cert, server_key_path = save("server", server, server_key)
    client_cert, client_key_path = save("client", client, client_key)
    rogue_cert, rogue_key_path = save("rogue", rogue, rogue_key)
    return TlsFiles(ca_path, server_cert, server_key_path, client_cert, client_key_path, rogue_cert, rogue_key_path)


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TlsFiles:
    # requests lets these variables replace a session's own CA file (psf/requests#3829), which
    # would hide the test CA from the OpenTelemetry HTTP exporter.
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    d = tmp_path / "tls"
    d.mkdir()
    return _write_cert_set(d)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if found is None:
        raise RuntimeError("nginx not found (ci/install.sh installs the Debian package nginx-light)")
    return found


class TlsProxy:
    """nginx terminating TLS in front of rotel; a client must present a certificate from ``tls.ca``."""

    def __init__(self, collector: Rotel, tls: TlsFiles, workdir: Path) -> None:
        self.https_port = free_port()
        self.grpcs_port = free_port()
        self.workdir = workdir
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        certs = (f"ssl_certificate {tls.server_cert}; ssl_certificate_key {tls.server_key};\n"
                 f"    ssl_client_certificate {tls.ca}; ssl_verify_client on; ssl_protocols TLSv1.2 TLSv1.3;")
        conf = f"""{user}worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {workdir}/logs/access.log;
  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi; uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  client_max_body_size 64m;
  server {{
    listen 127.0.0.1:{self.https_port} ssl;
    {certs}
    location / {{ proxy_pass http://127.0.0.1:{collector.http_port}; proxy_http_version 1.1; }}
  }}
  server {{
    listen 127.0.0.1:{self.grpcs_port} ssl http2;
    {certs}
    location / {{ grpc_pass grpc://127.0.0.1:{collector.grpc_port}; }}
  }}
}}
"""
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(conf)
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(workdir), "-e", str(workdir / "logs" / "error.log"), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_listening(self.https_port, proc=self.proc)
            wait_listening(self.grpcs_port, proc=self.proc)
        except Exception:
            self.stop()
            raise RuntimeError("nginx did not start: " + self.error_log()) from None

    @property
    def https_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def grpcs_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.grpcs_port}"

    def error_log(self) -> str:
        p = self.workdir / "logs" / "error.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def tls_proxy(collector: Rotel, tls: TlsFiles, tmp_path: Path) -> Iterator[TlsProxy]:
    proxy = TlsProxy(collector, tls, tmp_path / "nginx")
    yield proxy
    proxy.stop()
