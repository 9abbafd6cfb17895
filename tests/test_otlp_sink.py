"""The `otlp` kwarg of `Pipeline`: validation of every key, and the sink's counters in `stats()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ats import _native

URL = "http://127.0.0.1:4318/v1/traces"


def make(tmp_path: Path, otlp: dict[str, Any]) -> _native.Pipeline:
    return _native.Pipeline(store_path=str(tmp_path / "ats.db"), otlp=otlp)


def full(tmp_path: Path) -> dict[str, Any]:
    return {
        "traces_endpoint": URL,
        "metrics_endpoint": None,
        "logs_endpoint": "http://127.0.0.1:4318/v1/logs",
        "protocol": "http/protobuf",
        "headers": [("x-api-key", "k")],
        "compression": "gzip",
        "timeout_ms": 500,
        "certificate": None,
        "client_key": None,
        "client_certificate": None,
        "service_name": "svc",
        "resource_attributes": [("deployment.environment", "test")],
        "temporality": "delta",
        "spool_dir": str(tmp_path / "spool"),
        "spool_max_bytes": 1 << 20,
    }


def test_every_key_accepted_and_sink_counters_in_stats(tmp_path: Path) -> None:
    p = make(tmp_path, full(tmp_path))
    assert p.flush(2.0)
    otlp = p.stats()["sinks"]["otlp"]
    assert otlp["exported_spans"] == 0
    assert otlp["dropped_spool_overflow"] == 0
    assert otlp["breaker_state"] == 0
    assert p.shutdown(2.0)
    assert (tmp_path / "spool").is_dir()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("protocol", "http", 'otlp.protocol: must be "http/protobuf", "http/json" or "grpc", got "http"'),
        ("compression", "zstd", 'otlp.compression: must be "gzip" or "none", got "zstd"'),
        ("temporality", "both", 'otlp.temporality: must be "cumulative" or "delta", got "both"'),
        ("timeout_ms", 0, "otlp.timeout_ms: must be an int > 0, got 0"),
        ("spool_max_bytes", -1, "otlp.spool_max_bytes: must be an int > 0, got -1"),
        ("headers", [("a",)], "otlp.headers: must be a list of (str, str), got [('a',)]"),
        ("traces_endpoint", 5, "otlp.traces_endpoint: must be a str or None, got 5"),
        ("traces_endpoint", "ftp://x", 'otlp.traces_endpoint: "ftp://x" must start with http:// or https://'),
        ("client_key", "/k.pem", "otlp.client_key: client_key and client_certificate must be given together (mTLS)"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, key: str, value: object, message: str) -> None:
    cfg = full(tmp_path)
    cfg[key] = value
    with pytest.raises(ValueError) as e:
        make(tmp_path, cfg)
    assert str(e.value) == message


def test_unknown_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r'^otlp: unknown key "endpoint"; allowed: traces_endpoint, metrics_endpoint, '):
        make(tmp_path, {"endpoint": URL})


def test_missing_ca_file_is_an_error_at_start(tmp_path: Path) -> None:
    cfg = full(tmp_path)
    cfg["traces_endpoint"] = "https://127.0.0.1:4318/v1/traces"
    cfg["certificate"] = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match=r"otlp\.certificate: "):
        make(tmp_path, cfg)
