"""The typed, frozen :class:`Config` and its construction from merged layers."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field, fields, is_dataclass
else:  # the same behaviour without compiling methods at start-up (see _record)
    from ats.config._record import field, fields
    from ats.config._record import is_record as is_dataclass
    from ats.config._record import record as dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from ats.config._keys import KEYS, SIGNALS
from ats.config._values import ConfigError, Invalid, Raw, mask_pairs, render, render_bytes


@dataclass(frozen=True)
class SamplingRule:
    """Spans whose name starts with ``prefix`` are kept at ``ok_rate`` (``error_rate`` if failed)."""

    prefix: str
    ok_rate: float
    error_rate: float = 1.0


@dataclass(frozen=True)
class RedactionPattern:
    """Every match of ``regex`` (Rust syntax) is replaced by ``marker``."""

    name: str
    regex: str
    marker: str


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    resource_attributes: Mapping[str, str]


@dataclass(frozen=True)
class StoreConfig:
    enabled: bool
    path: Path


@dataclass(frozen=True)
class JsonlConfig:
    enabled: bool
    dir: Path
    max_file_bytes: int
    max_total_bytes: int | None


@dataclass(frozen=True)
class RingConfig:
    bytes: int


@dataclass(frozen=True)
class FlushConfig:
    interval_ms: int
    batch_max_records: int
    #: Records kept for ``ats_process_batch`` plugins before batches are dropped (``handoff_full``).
    handoff_max_records: int


@dataclass(frozen=True)
class ShutdownConfig:
    timeout_s: float


@dataclass(frozen=True)
class SamplingConfig:
    ratio: float
    parent_based: bool
    rules: tuple[SamplingRule, ...]
    rate_limit_per_second: float | None
    daily_cap: int | None


@dataclass(frozen=True)
class TailConfig:
    enabled: bool
    latency_ms: float
    base_ratio: float


@dataclass(frozen=True)
class PlansConfig:
    enabled: bool
    latency_ms: float
    interval_s: float
    queue_size: int


@dataclass(frozen=True)
class CapabilitiesConfig:
    enabled: bool


@dataclass(frozen=True)
class GenaiConfig:
    """``genai.*``: agent framework plugins (prompts and completions are content, seed 002)."""

    capture_content: bool


@dataclass(frozen=True)
class ResourcesConfig:
    """``resources.*``: the process resource sampler (:mod:`ats.resources`)."""

    enabled: bool
    interval_s: float


@dataclass(frozen=True)
class RedactionConfig:
    enabled: bool
    patterns: tuple[RedactionPattern, ...]


@dataclass(frozen=True)
class MetricsConfig:
    interval_ms: int


@dataclass(frozen=True)
class RetentionConfig:
    traces_days: int
    logs_days: int
    metrics_days: int
    learning_days: int


@dataclass(frozen=True)
class PluginsConfig:
    disabled: tuple[str, ...]
    allowed: tuple[str, ...] | None
    trace_hooks: bool


@dataclass(frozen=True)
class SloRule:
    """One ``slo.rules`` item: every condition given must hold (empty/None: any)."""

    slo_class: str
    operations: tuple[str, ...]
    tables: tuple[str, ...]
    summary: str | None
    min_latency_ms: float | None


@dataclass(frozen=True)
class SloConfig:
    rules: tuple[SloRule, ...]
    default_class: str


@dataclass(frozen=True)
class SqlcommenterConfig:
    enabled: bool


@dataclass(frozen=True)
class McpConfig:
    """``mcp.*``: ``capture_content`` records MCP tool arguments and results (scrubbed) as text."""

    capture_content: bool


@dataclass(frozen=True)
class ExportConfig:
    enabled: bool
    endpoint: str


@dataclass(frozen=True)
class OtlpConfig:
    """``otlp.*``: per-signal fields are ``None`` when unset (the generic field applies)."""

    endpoint: str
    protocol: str
    headers: Mapping[str, str]
    compression: str
    timeout_ms: int
    certificate: Path | None
    client_key: Path | None
    client_certificate: Path | None
    traces_exporter: str
    traces_endpoint: str | None
    traces_protocol: str | None
    traces_headers: Mapping[str, str] | None
    traces_compression: str | None
    traces_timeout_ms: int | None
    traces_certificate: Path | None
    traces_client_key: Path | None
    traces_client_certificate: Path | None
    metrics_exporter: str
    metrics_endpoint: str | None
    metrics_protocol: str | None
    metrics_headers: Mapping[str, str] | None
    metrics_compression: str | None
    metrics_timeout_ms: int | None
    metrics_certificate: Path | None
    metrics_client_key: Path | None
    metrics_client_certificate: Path | None
    logs_exporter: str
    logs_endpoint: str | None
    logs_protocol: str | None
    logs_headers: Mapping[str, str] | None
    logs_compression: str | None
    logs_timeout_ms: int | None
    logs_certificate: Path | None
    logs_client_key: Path | None
    logs_client_certificate: Path | None
    metrics_temporality: str
    spool_dir: Path
    spool_max_bytes: int


_SECTIONS: dict[str, type[Any]] = {
    "service": ServiceConfig, "store": StoreConfig, "jsonl": JsonlConfig, "ring": RingConfig,
    "flush": FlushConfig, "shutdown": ShutdownConfig, "sampling": SamplingConfig, "tail": TailConfig,
    "plans": PlansConfig, "capabilities": CapabilitiesConfig, "genai": GenaiConfig,
    "resources": ResourcesConfig,
    "redaction": RedactionConfig, "metrics": MetricsConfig, "retention": RetentionConfig,
    "plugins": PluginsConfig, "export": ExportConfig, "otlp": OtlpConfig, "slo": SloConfig,
    "sqlcommenter": SqlcommenterConfig, "mcp": McpConfig,
}
_BYTE_KEYS = frozenset({"ring.bytes", "jsonl.max_file_bytes", "jsonl.max_total_bytes", "otlp.spool_max_bytes"})
#: Keys whose values are secrets (API keys in headers): ``ats config show`` masks their values.
_SECRET_KEYS = frozenset({"otlp.headers", *(f"otlp.{s}_headers" for s in SIGNALS)})


@dataclass(frozen=True)
class Config:
    """The effective configuration. Attribute paths match the dotted keys:
    ``config.sampling.ratio`` is key ``sampling.ratio``."""

    service: ServiceConfig
    tenant: str
    workspace: str
    region: str
    mode: Literal["prod", "dev"]
    home: Path
    disabled: bool
    store: StoreConfig
    jsonl: JsonlConfig
    ring: RingConfig
    flush: FlushConfig
    shutdown: ShutdownConfig
    sampling: SamplingConfig
    tail: TailConfig
    plans: PlansConfig
    capabilities: CapabilitiesConfig
    genai: GenaiConfig
    resources: ResourcesConfig
    redaction: RedactionConfig
    metrics: MetricsConfig
    retention: RetentionConfig
    plugins: PluginsConfig
    export: ExportConfig
    otlp: OtlpConfig
    slo: SloConfig
    sqlcommenter: SqlcommenterConfig
    mcp: McpConfig
    sources: Mapping[str, str] = field(repr=False, compare=False, default_factory=dict)

    def get(self, key: str) -> Any:
        """The value of a dotted key, e.g. ``config.get("sampling.ratio")``."""
        self._check(key)
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value

    def provenance(self, key: str) -> str:
        """Where the value came from: ``default``, ``file /abs/ats.toml``,
        ``env OTEL_SERVICE_NAME``, ``init()`` or ``init(config)``."""
        self._check(key)
        return self.sources[key]

    def as_rows(self) -> list[tuple[str, str, str]]:
        """``(key, rendered value, source)`` for every key, sorted by key (``ats config show``)."""
        return [(k, _render_key(k, self.get(k)), self.sources[k]) for k in sorted(KEYS)]

    def to_dict(self) -> dict[str, Any]:
        """Nested plain data (JSON-serialisable): paths as strings, tuples as lists."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "sources"}

    def changed_keys(self, other: Config) -> frozenset[str]:
        """Keys whose values differ between two configurations (for ``ats.reload()``)."""
        return frozenset(k for k in KEYS if self.get(k) != other.get(k))

    def pipeline_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ats._native.Pipeline`` built from this configuration.

        ``otlp`` is None when no OTLP endpoint is configured (see :meth:`otlp_exporter`).
        """
        return {
            "store_path": str(self.store.path) if self.store.enabled else None,
            "jsonl_dir": str(self.jsonl.dir) if self.jsonl.enabled else None,
            "jsonl_max_file_bytes": self.jsonl.max_file_bytes,
            "jsonl_max_total_bytes": self.jsonl.max_total_bytes,
            "ring_bytes": self.ring.bytes,
            "flush_interval_ms": self.flush.interval_ms,
            "batch_max_records": self.flush.batch_max_records,
            "handoff_max_records": self.flush.handoff_max_records,
            "tenant": self.tenant,
            "workspace": self.workspace,
            "region": self.region,
            "sample_ratio": self.sampling.ratio,
            "parent_based": self.sampling.parent_based,
            "sampling_rules": [(r.prefix, r.ok_rate, r.error_rate) for r in self.sampling.rules],
            "rate_limit_per_second": self.sampling.rate_limit_per_second,
            "daily_cap": self.sampling.daily_cap,
            "redact": self.redaction.enabled,
            "scrub_patterns": [(p.name, p.regex, p.marker) for p in self.redaction.patterns],
            "tail_latency_ms": self.tail.latency_ms if self.tail.enabled else None,
            "tail_base_ratio": self.tail.base_ratio,
            "metrics_interval_ms": self.metrics.interval_ms,
            "retention_days": (self.retention.traces_days, self.retention.logs_days,
                               self.retention.metrics_days, self.retention.learning_days),
            "otlp": self.otlp_exporter(),
        }

    def otlp_exporter(self) -> dict[str, Any] | None:
        """The OTLP exporter settings (``ats.config._otlp``), or None when nothing is exported."""
        from ats.config._otlp import resolve

        def fail(key: str, allowed: str) -> ConfigError:  # validated by build(): unreachable
            return ConfigError(key, _shown(key, self.get(key)), allowed, self.sources[key])

        return resolve(self.get, lambda key: self.sources[key] != "default", fail)

    def _check(self, key: str) -> None:
        if key not in KEYS:
            from ats.config._sources import suggest

            hint = suggest(key, KEYS)
            raise KeyError(f"unknown configuration key {key!r}" + (f"; did you mean {hint}?" if hint else ""))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _slo_rule_item(rule: SloRule) -> dict[str, Any]:
    """A ``slo.rules`` item as written in a file or ``ATS_SLO_RULES`` (only the set conditions)."""
    item: dict[str, Any] = {"class": rule.slo_class}
    if rule.operations:
        item["operations"] = list(rule.operations)
    if rule.tables:
        item["tables"] = list(rule.tables)
    if rule.summary is not None:
        item["summary"] = rule.summary
    if rule.min_latency_ms is not None:
        item["min_latency_ms"] = rule.min_latency_ms
    return item


def _shown(key: str, value: object) -> object:
    """A value as errors may show it: secrets (header values) masked."""
    return mask_pairs(value) if key in _SECRET_KEYS else value


def _render_key(key: str, value: Any) -> str:
    """Renders a value so that it could be pasted back into its env var."""
    from urllib.parse import quote

    if value is None:
        return "none"
    if key in _SECRET_KEYS:
        return ",".join(f"{quote(k, safe='/:@._-~')}=***" for k in value)
    if key in _BYTE_KEYS:
        return render_bytes(value)
    if key == "service.resource_attributes":
        return ",".join(f"{quote(k, safe='/:@._-~')}={quote(v, safe='/:@._-~')}" for k, v in value.items())
    if key == "sampling.rules":
        return ",".join(f"{r.prefix}:{r.ok_rate}:{r.error_rate}" for r in value)
    if key == "redaction.patterns":
        return json.dumps(_plain(value)) if value else "[]"
    if key == "slo.rules":
        return json.dumps([_slo_rule_item(r) for r in value])
    if key.startswith("plugins.") and isinstance(value, tuple):
        return ",".join(value)
    return render(value)


def default_service_name() -> str:
    """The script's name (``app`` for ``python app.py``), else ``unknown_service``."""
    argv = getattr(sys, "argv", None) or [""]
    first = argv[0]
    if not first or first in ("-c", "-m", "-"):
        return "unknown_service"
    p = Path(first)
    name = p.parent.name if p.stem == "__main__" else p.stem
    return name or "unknown_service"


def build(merged: Mapping[str, Raw], cwd: Path) -> Config:
    """Validates the winning raw value of every key and assembles the Config."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, spec in KEYS.items():
        raw = merged.get(name)
        if raw is None:
            values[name], sources[name] = spec.default, "default"
            continue
        try:
            values[name] = spec.parse(raw.value, raw.base)
        except Invalid as e:
            raise ConfigError(raw.label or name, _shown(name, raw.value), e.allowed or spec.allowed, raw.source) from None
        sources[name] = raw.source

    def fail(key: str, allowed: str) -> ConfigError:
        raw = merged[key]
        return ConfigError(raw.label or key, _shown(key, raw.value), allowed, raw.source)

    if values["service.name"] is None:
        values["service.name"] = default_service_name()
    if values["home"] is None:
        values["home"] = cwd / ".ats"
    if values["store.path"] is None:
        values["store.path"] = values["home"] / "ats.db"
    if values["jsonl.dir"] is None:
        values["jsonl.dir"] = values["home"] / "jsonl"
    if not values["redaction.enabled"] and values["mode"] != "dev":
        raise fail("redaction.enabled", "true unless mode = dev (turning redaction off, "
                                        "telemetry.debugRedact=false, is dev-only)")
    total = values["jsonl.max_total_bytes"]
    if total is not None and total < values["jsonl.max_file_bytes"]:
        raise fail("jsonl.max_total_bytes",
                   f"none or at least jsonl.max_file_bytes ({render_bytes(values['jsonl.max_file_bytes'])})")
    if values["export.enabled"] and not values["export.endpoint"]:
        raise fail("export.enabled", "false while export.endpoint is empty")
    if values["otlp.spool_dir"] is None:
        values["otlp.spool_dir"] = values["home"] / "otlp-spool"
    from ats.config._otlp import resolve

    resolve(values.__getitem__, merged.__contains__, fail)
    for key in KEYS:
        if key.endswith("headers") and values[key] is not None:
            values[key] = MappingProxyType(dict(values[key]))
    values["service.resource_attributes"] = MappingProxyType(dict(values["service.resource_attributes"]))
    values["sampling.rules"] = tuple(SamplingRule(*r) for r in values["sampling.rules"])
    values["redaction.patterns"] = tuple(RedactionPattern(*p) for p in values["redaction.patterns"])
    values["slo.rules"] = tuple(SloRule(*r) for r in values["slo.rules"])

    top: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        top[section] = cls(**{f.name: values[f"{section}.{f.name}"] for f in fields(cls)})
    for name in ("tenant", "workspace", "region", "mode", "home", "disabled"):
        top[name] = values[name]
    return Config(**top, sources=MappingProxyType(sources))
