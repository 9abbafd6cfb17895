"""OTLP exporter configuration: the standard OTEL_EXPORTER_OTLP_* variables, the ``[otlp]`` table,
per-signal precedence, endpoint resolution, errors, and ``Config.pipeline_kwargs()["otlp"]``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ats.config import Config, ConfigError, load_config

SIGNALS = ("traces", "metrics", "logs")
SETTINGS = {  # setting -> (env suffix, raw env value, parsed value)
    "endpoint": ("ENDPOINT", "https://c.example:4318", "https://c.example:4318"),
    "protocol": ("PROTOCOL", "http/json", "http/json"),
    "headers": ("HEADERS", "api-key=s%20k,tenant=a", {"api-key": "s k", "tenant": "a"}),
    "compression": ("COMPRESSION", "gzip", "gzip"),
    "timeout_ms": ("TIMEOUT", "1500", 1500),
    "certificate": ("CERTIFICATE", __file__, Path(__file__)),
    "client_key": ("CLIENT_KEY", __file__, Path(__file__)),
    "client_certificate": ("CLIENT_CERTIFICATE", __file__, Path(__file__)),
}


@pytest.fixture(autouse=True)
def _script_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/srv/app/worker.py"])


def load(tmp_path: Path, environ: dict[str, str] | None = None, **kw: Any) -> Config:
    return load_config(environ=environ or {}, cwd=tmp_path, **kw)


def otlp(tmp_path: Path, environ: dict[str, str] | None = None, **kw: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None = load(tmp_path, environ, **kw).pipeline_kwargs()["otlp"]
    return result


def error(tmp_path: Path, environ: dict[str, str] | None = None, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, environ, **kw)
    assert "\n" not in str(info.value)
    return str(info.value)


def expected(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "traces_endpoint": "http://c:4318/v1/traces", "metrics_endpoint": "http://c:4318/v1/metrics",
        "logs_endpoint": "http://c:4318/v1/logs", "protocol": "http/protobuf", "headers": [],
        "compression": "none", "timeout_ms": 10000, "certificate": None, "client_key": None,
        "client_certificate": None, "service_name": "worker", "resource_attributes": [],
        "temporality": "cumulative", "spool_dir": str(tmp_path.resolve() / ".ats" / "otlp-spool"),
        "spool_max_bytes": 64 << 20,
    }
    assert set(changes) <= set(base)
    return {**base, **changes}


# --- every variable ---------------------------------------------------------------------------


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_generic_otel_variable(tmp_path: Path, setting: str) -> None:
    suffix, raw, value = SETTINGS[setting]
    var = f"OTEL_EXPORTER_OTLP_{suffix}"
    c = load(tmp_path, {var: raw})
    assert c.get(f"otlp.{setting}") == value
    assert c.provenance(f"otlp.{setting}") == f"env {var}"


@pytest.mark.parametrize("signal", SIGNALS)
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_per_signal_otel_variable(tmp_path: Path, signal: str, setting: str) -> None:
    suffix, raw, value = SETTINGS[setting]
    var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"
    c = load(tmp_path, {var: raw})
    assert c.get(f"otlp.{signal}_{setting}") == value
    assert c.provenance(f"otlp.{signal}_{setting}") == f"env {var}"
    assert c.get(f"otlp.{setting}") == load(tmp_path).get(f"otlp.{setting}")  # generic untouched


@pytest.mark.parametrize("signal", SIGNALS)
def test_signal_exporter_variables(tmp_path: Path, signal: str) -> None:
    c = load(tmp_path, {f"OTEL_{signal.upper()}_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert c.get(f"otlp.{signal}_exporter") == "none"
    assert c.provenance(f"otlp.{signal}_exporter") == f"env OTEL_{signal.upper()}_EXPORTER"
    assert otlp(tmp_path, {f"OTEL_{signal.upper()}_EXPORTER": "none",
                           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == expected(
        tmp_path, **{f"{signal}_endpoint": None})


@pytest.mark.parametrize("raw, value, temporality", [
    ("cumulative", "cumulative", "cumulative"), ("DELTA", "delta", "delta"), ("lowmemory", "lowmemory", "delta"),
])
def test_temporality_preference(tmp_path: Path, raw: str, value: str, temporality: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": raw, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    c = load(tmp_path, env)
    assert (c.otlp.metrics_temporality, c.provenance("otlp.metrics_temporality")) == (
        value, "env OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE")
    assert otlp(tmp_path, env) == expected(tmp_path, temporality=temporality)


def test_service_name_and_resource_attributes(tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SERVICE_NAME": "billing",
           "OTEL_RESOURCE_ATTRIBUTES": "service.name=ignored,deployment.environment=prod,team=d%2Cb"}
    assert otlp(tmp_path, env) == expected(
        tmp_path, service_name="billing", resource_attributes=[("deployment.environment", "prod"), ("team", "d,b")])


# --- endpoints --------------------------------------------------------------------------------


def test_no_endpoint_means_no_exporter(tmp_path: Path) -> None:
    assert otlp(tmp_path) is None
    assert otlp(tmp_path, {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}) is None
    # Every signal off: nothing exported even with an endpoint.
    assert otlp(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none",
                           "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}) is None


@pytest.mark.parametrize("base, protocol, traces", [
    ("http://c:4318", "http/protobuf", "http://c:4318/v1/traces"),
    ("http://c:4318/", "http/protobuf", "http://c:4318/v1/traces"),
    ("https://c.example/otlp", "http/json", "https://c.example/otlp/v1/traces"),
    ("https://c.example/otlp/", "http/json", "https://c.example/otlp/v1/traces"),
    ("http://c:4317", "grpc", "http://c:4317"),
    ("https://c:4317/", "grpc", "https://c:4317/"),
])
def test_generic_endpoint_is_a_base_for_http_and_as_is_for_grpc(
    tmp_path: Path, base: str, protocol: str, traces: str
) -> None:
    got = otlp(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": base, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
    assert got is not None
    assert got["protocol"] == protocol
    assert got["traces_endpoint"] == traces
    assert got["metrics_endpoint"] == (traces if protocol == "grpc" else traces.replace("traces", "metrics"))
    assert got["logs_endpoint"] == (traces if protocol == "grpc" else traces.replace("traces", "logs"))


def test_per_signal_endpoint_is_used_as_is_and_wins(tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
           "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:9999/custom/path",
           "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:1"}
    assert otlp(tmp_path, env) == expected(
        tmp_path, traces_endpoint="http://t:9999/custom/path", logs_endpoint="http://l:1")


def test_only_per_signal_endpoint_exports_only_that_signal(tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t.example/v1/traces",
           "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-api-key=k"}
    assert otlp(tmp_path, env) == expected(
        tmp_path, traces_endpoint="https://t.example/v1/traces", metrics_endpoint=None, logs_endpoint=None,
        headers=[("x-api-key", "k")])


def test_explicit_otlp_exporter_without_endpoint_uses_the_spec_default(tmp_path: Path) -> None:
    got = otlp(tmp_path, {"OTEL_TRACES_EXPORTER": "otlp"})
    assert got == expected(tmp_path, traces_endpoint="http://localhost:4318/v1/traces", metrics_endpoint=None,
                           logs_endpoint=None)
    got = otlp(tmp_path, {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert got == expected(tmp_path, traces_endpoint=None, metrics_endpoint="http://localhost:4317",
                           logs_endpoint=None, protocol="grpc")


def test_export_endpoint_is_the_fallback_base(tmp_path: Path) -> None:
    env = {"ATS_EXPORT_ENABLED": "true", "ATS_EXPORT_ENDPOINT": "http://c:4318"}
    assert otlp(tmp_path, env) == expected(tmp_path)
    assert otlp(tmp_path, {"ATS_EXPORT_ENDPOINT": "http://c:4318"}) is None  # not enabled
    got = otlp(tmp_path, {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"})
    assert got is not None and got["traces_endpoint"] == "http://other:4318/v1/traces"


# --- precedence -------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", sorted(set(SETTINGS) - {"endpoint"}))
def test_per_signal_setting_overrides_generic_when_all_agree(tmp_path: Path, setting: str) -> None:
    suffix, raw, value = SETTINGS[setting]
    generic = {"protocol": "grpc", "headers": "a=b", "compression": "none", "timeout_ms": "99",
               "certificate": str(Path(__file__).parent / "conftest.py"),
               "client_key": str(Path(__file__).parent / "conftest.py"),
               "client_certificate": str(Path(__file__).parent / "conftest.py")}[setting]
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", f"OTEL_EXPORTER_OTLP_{suffix}": generic,
           **{f"OTEL_EXPORTER_OTLP_{s.upper()}_{suffix}": raw for s in SIGNALS}}
    got = otlp(tmp_path, env)
    assert got is not None
    want = list(value.items()) if setting == "headers" else str(value) if isinstance(value, Path) else value
    assert got[setting] == want


def test_per_signal_protocol_changes_how_the_endpoint_is_built(tmp_path: Path) -> None:
    # Only traces exported: its protocol (grpc) wins over the generic http/protobuf.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
           "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    assert otlp(tmp_path, env) == expected(tmp_path, traces_endpoint="http://c:4317", metrics_endpoint=None,
                                           logs_endpoint=None, protocol="grpc")


def test_errors_never_show_header_values(tmp_path: Path) -> None:
    msg = error(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                           "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=TOPSECRET"})
    assert msg.startswith("ats config: otlp.traces_headers = api-key=*** (from env OTEL_EXPORTER_OTLP_TRACES_HEADERS)")


def test_signals_that_disagree_are_an_error_naming_the_per_signal_key(tmp_path: Path) -> None:
    msg = error(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip"})
    assert msg == ("ats config: otlp.logs_compression = gzip (from env OTEL_EXPORTER_OTLP_LOGS_COMPRESSION): "
                   "expected the compression of every exported signal to be the same (ATS sends traces, metrics "
                   "and logs with one compression): also set otlp.traces_compression, otlp.metrics_compression, "
                   "or set otlp.compression instead")
    # The same per-signal value on a signal that is not exported is no conflict.
    assert otlp(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_LOGS_EXPORTER": "none",
                           "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip"}) == expected(tmp_path, logs_endpoint=None)


def test_ats_variables_win_over_otel_variables(tmp_path: Path) -> None:
    c = load(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "ATS_OTLP_ENDPOINT": "http://ats:4318",
                        "OTEL_EXPORTER_OTLP_TIMEOUT": "5", "ATS_OTLP_TIMEOUT_MS": "7"})
    assert (c.otlp.endpoint, c.provenance("otlp.endpoint")) == ("http://ats:4318", "env ATS_OTLP_ENDPOINT")
    assert (c.otlp.timeout_ms, c.provenance("otlp.timeout_ms")) == (7, "env ATS_OTLP_TIMEOUT_MS")


def test_config_file_table_and_precedence(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "ats.toml").write_text(
        '[otlp]\nendpoint = "http://file:4318"\nprotocol = "http/json"\ncompression = "gzip"\n'
        'timeout_ms = 3000\ncertificate = "ca.pem"\nmetrics_exporter = "none"\n'
        'spool_dir = "spool"\nspool_max_bytes = "1GiB"\n[otlp.headers]\n"api-key" = "from-file"\n')
    src = f"file {(tmp_path / 'ats.toml').resolve()}"
    c = load(tmp_path)
    assert {k: c.provenance(k) for k in ("otlp.endpoint", "otlp.headers", "otlp.spool_dir")} == {
        "otlp.endpoint": src, "otlp.headers": src, "otlp.spool_dir": src}
    assert c.pipeline_kwargs()["otlp"] == expected(
        tmp_path, traces_endpoint="http://file:4318/v1/traces", metrics_endpoint=None,
        logs_endpoint="http://file:4318/v1/logs", protocol="http/json", compression="gzip", timeout_ms=3000,
        headers=[("api-key", "from-file")], certificate=str(tmp_path.resolve() / "ca.pem"),
        spool_dir=str(tmp_path.resolve() / "spool"), spool_max_bytes=1 << 30)
    # OTEL_* variables win over the file; init() wins over everything.
    c = load(tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://env:4318"}, overrides={"otlp_compression": "none"})
    assert (c.otlp.endpoint, c.otlp.compression, c.provenance("otlp.compression")) == (
        "http://env:4318", "none", "init()")


def test_yaml_table(tmp_path: Path) -> None:
    (tmp_path / "ats.yaml").write_text("otlp:\n  traces_endpoint: http://y:1/t\n  traces_headers: {k: v}\n")
    assert otlp(tmp_path) == expected(tmp_path, traces_endpoint="http://y:1/t", metrics_endpoint=None,
                                      logs_endpoint=None, headers=[("k", "v")])


def test_spool_off_and_default_dir_under_home(tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    got = otlp(tmp_path, {**env, "ATS_OTLP_SPOOL_MAX_BYTES": "0"})
    assert got == expected(tmp_path, spool_dir=None, spool_max_bytes=0)
    got = otlp(tmp_path, {**env, "ATS_HOME": str(tmp_path / "h")})
    assert got is not None and got["spool_dir"] == str(tmp_path / "h" / "otlp-spool")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("var, raw, message", [
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318",
     "otlp.endpoint = c:4318 (from env OTEL_EXPORTER_OTLP_ENDPOINT): expected an http:// or https:// URL, or empty"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://c",
     "otlp.traces_endpoint = grpc://c (from env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): expected none (use "
     "otlp.endpoint) or an http:// or https:// URL, or empty"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http",
     "otlp.protocol = http (from env OTEL_EXPORTER_OTLP_PROTOCOL): expected one of http/protobuf, http/json, grpc"),
    ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "thrift",
     "otlp.metrics_protocol = thrift (from env OTEL_EXPORTER_OTLP_METRICS_PROTOCOL): expected none (use "
     "otlp.protocol) or one of http/protobuf, http/json, grpc"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd",
     "otlp.compression = zstd (from env OTEL_EXPORTER_OTLP_COMPRESSION): expected one of gzip, none"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s",
     "otlp.timeout_ms = 10s (from env OTEL_EXPORTER_OTLP_TIMEOUT): expected an integer of milliseconds "
     "between 1 and 3600000"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "novalue",
     "otlp.headers = novalue (from env OTEL_EXPORTER_OTLP_HEADERS): expected k=v pairs separated by commas "
     "(percent-encoded) or a table of strings, with HTTP token names and no control characters in values"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=v",
     "otlp.headers = 'bad name=***' (from env OTEL_EXPORTER_OTLP_HEADERS): expected k=v pairs separated by commas "
     "(percent-encoded) or a table of strings, with HTTP token names and no control characters in values"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "k=a%0Db",
     "otlp.headers = k=*** (from env OTEL_EXPORTER_OTLP_HEADERS): expected k=v pairs separated by commas "
     "(percent-encoded) or a table of strings, with HTTP token names and no control characters in values"),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem",
     "otlp.certificate = /nonexistent/ca.pem (from env OTEL_EXPORTER_OTLP_CERTIFICATE): expected none or the "
     "path of an existing PEM file"),
    ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "/nonexistent/k.pem",
     "otlp.logs_client_key = /nonexistent/k.pem (from env OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY): expected none "
     "(use otlp.client_key) or none or the path of an existing PEM file"),
    ("OTEL_TRACES_EXPORTER", "console",
     "otlp.traces_exporter = console (from env OTEL_TRACES_EXPORTER): expected one of otlp, none"),
    ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "both",
     "otlp.metrics_temporality = both (from env OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE): expected "
     "one of cumulative, delta, lowmemory"),
    ("ATS_OTLP_SPOOL_MAX_BYTES", "10KiB",
     "otlp.spool_max_bytes = 10KiB (from env ATS_OTLP_SPOOL_MAX_BYTES): expected 0 (no spool) or a byte size "
     "between 1MiB and 1TiB (an integer or e.g. 256MiB)"),
])
def test_bad_values_name_key_value_source_and_allowed(tmp_path: Path, var: str, raw: str, message: str) -> None:
    assert error(tmp_path, {var: raw}) == "ats config: " + message


def test_bad_value_in_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text('[otlp]\nprotocol = "udp"\n')
    assert error(tmp_path) == (f"ats config: otlp.protocol = udp (from file {(tmp_path / 'ats.toml').resolve()}): "
                               "expected one of http/protobuf, http/json, grpc")


def test_unknown_otlp_key_suggests(tmp_path: Path) -> None:
    assert error(tmp_path, {"ATS_OTLP_ENDPONT": "http://c"}).endswith("did you mean ATS_OTLP_ENDPOINT?")


# --- ats config show --------------------------------------------------------------------------


def test_config_show_lists_otlp_keys_with_provenance_and_masks_headers(tmp_path: Path) -> None:
    import ats

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(ats.__file__).resolve().parent.parent),
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=SECRET123,x=y",
           "ATS_OTLP_TRACES_HEADERS": "authorization=Bearer%20TOKEN456", "OTEL_METRICS_EXPORTER": "none",
           "OTEL_LOGS_EXPORTER": "none"}
    out = subprocess.run([sys.executable, "-m", "ats.cli", "config", "show", "--json"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, check=True).stdout
    assert "SECRET123" not in out and "TOKEN456" not in out
    rows = {r["key"]: (r["value"], r["source"]) for r in json.loads(out)}
    assert rows["otlp.endpoint"] == ("http://c:4318", "env OTEL_EXPORTER_OTLP_ENDPOINT")
    assert rows["otlp.headers"] == ("api-key=***,x=***", "env OTEL_EXPORTER_OTLP_HEADERS")
    assert rows["otlp.traces_headers"] == ("authorization=***", "env ATS_OTLP_TRACES_HEADERS")
    assert rows["otlp.metrics_headers"] == ("none", "default")
    assert rows["otlp.protocol"] == ("http/protobuf", "default")
    assert rows["otlp.spool_max_bytes"] == ("64MiB", "default")
    assert len([k for k in rows if k.startswith("otlp.")]) == 38
