"""The OTLP exporter settings the native pipeline receives (``Config.pipeline_kwargs()["otlp"]``).

Resolution follows the OpenTelemetry OTLP exporter specification:

* a per-signal key (``otlp.traces_protocol``, ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``) wins over the
  generic one (``otlp.protocol``, ``OTEL_EXPORTER_OTLP_PROTOCOL``) for that signal;
* a per-signal endpoint is used as it is; the generic endpoint is a base URL to which
  ``v1/traces`` / ``v1/metrics`` / ``v1/logs`` is appended for the HTTP protocols, and is used as it
  is for gRPC;
* ``otlp.<signal>_exporter = none`` (``OTEL_<SIGNAL>_EXPORTER=none``) turns one signal off.

ATS exports nothing unless an endpoint is configured: ``otlp.endpoint``, a per-signal endpoint,
``export.endpoint`` with ``export.enabled`` (the seed-shaped setting, used as the generic endpoint
when ``otlp.endpoint`` is empty), or an exporter explicitly set to ``otlp`` (then the
specification's default, ``http://localhost:4318`` or ``http://localhost:4317`` for gRPC).

The native exporter sends every signal with one protocol, one set of headers, one compression,
one timeout and one TLS identity; exported signals whose resolved values differ are a
configuration error naming the per-signal key. ``lowmemory`` temporality means delta for ATS's
metrics (all synchronous counters and histograms; gauges have no temporality).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ats.config._keys import OTLP_SETTINGS, SIGNALS
from ats.config._values import ConfigError

_DEFAULT_HTTP = "http://localhost:4318"
_DEFAULT_GRPC = "http://localhost:4317"
_SHARED = tuple(s for s in OTLP_SETTINGS if s != "endpoint")


def _signal_value(get: Callable[[str], Any], signal: str, setting: str) -> Any:
    value = get(f"otlp.{signal}_{setting}")
    if value is None or (setting == "endpoint" and value == ""):
        return get(f"otlp.{setting}")
    return value


def _endpoint(get: Callable[[str], Any], explicit: Callable[[str], bool], signal: str) -> str | None:
    if get(f"otlp.{signal}_exporter") == "none":
        return None
    own = get(f"otlp.{signal}_endpoint")
    if own:
        return str(own)
    grpc = _signal_value(get, signal, "protocol") == "grpc"
    base = get("otlp.endpoint") or (get("export.endpoint") if get("export.enabled") else "")
    if not base and explicit(f"otlp.{signal}_exporter"):
        base = _DEFAULT_GRPC if grpc else _DEFAULT_HTTP
    if not base:
        return None
    if grpc:
        return str(base)
    return f"{base}{'' if base.endswith('/') else '/'}v1/{signal}"


def resolve(
    get: Callable[[str], Any],
    explicit: Callable[[str], bool],
    fail: Callable[[str, str], ConfigError],
) -> dict[str, Any] | None:
    """The ``otlp`` keyword argument of ``ats._native.Pipeline``, or None when nothing is exported.

    :param get: the validated value of a key.
    :param explicit: whether a key was set by some source (not its default).
    :param fail: the :class:`ConfigError` for a key whose value cannot be used, given what is allowed.
    """
    endpoints = {s: _endpoint(get, explicit, s) for s in SIGNALS}
    active = [s for s in SIGNALS if endpoints[s] is not None]
    if not active:
        return None
    shared: dict[str, Any] = {}
    for setting in _SHARED:
        values = {s: _signal_value(get, s, setting) for s in active}
        first = values[active[0]]
        if any(values[s] != first for s in active):
            culprit = next(s for s in active if get(f"otlp.{s}_{setting}") is not None)
            others = ", ".join(f"otlp.{s}_{setting}" for s in active if s != culprit)
            raise fail(f"otlp.{culprit}_{setting}",
                       f"the {setting} of every exported signal to be the same (ATS sends traces, metrics and "
                       f"logs with one {setting}): also set {others}, or set otlp.{setting} instead")
        shared[setting] = first
    headers: Mapping[str, str] = shared["headers"]
    resource: Mapping[str, str] = get("service.resource_attributes")
    spool_max: int = get("otlp.spool_max_bytes")
    return {
        "traces_endpoint": endpoints["traces"],
        "metrics_endpoint": endpoints["metrics"],
        "logs_endpoint": endpoints["logs"],
        "protocol": shared["protocol"],
        "headers": list(headers.items()),
        "compression": shared["compression"],
        "timeout_ms": shared["timeout_ms"],
        "certificate": _path(shared["certificate"]),
        "client_key": _path(shared["client_key"]),
        "client_certificate": _path(shared["client_certificate"]),
        "service_name": get("service.name"),
        "resource_attributes": [(k, v) for k, v in resource.items() if k != "service.name"],
        "temporality": "cumulative" if get("otlp.metrics_temporality") == "cumulative" else "delta",
        "spool_dir": str(get("otlp.spool_dir")) if spool_max else None,
        "spool_max_bytes": spool_max,
    }


def _path(value: Path | None) -> str | None:
    return None if value is None else str(value)
