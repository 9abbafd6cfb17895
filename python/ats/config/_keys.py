"""The table of configuration keys: parser, what is allowed, default, env var."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # the same behaviour without compiling methods at start-up (see _record)
    from ats.config._record import record as dataclass

from ats.config import _values as v

MIB = 1 << 20


@dataclass(frozen=True)
class Key:
    name: str
    parse: v.Parser
    allowed: str
    # ``None`` for keys whose default is computed at load time (service.name,
    # home, store.path, jsonl.dir) or that are unset by default.
    default: object
    env: str


def _env(name: str) -> str:
    return "ATS_" + name.upper().replace(".", "_")


_BOOL = "a boolean (true/false, 1/0, yes/no, on/off)"
_RATIO = "a number between 0 and 1"


def _k(name: str, parse: v.Parser, allowed: str, default: object, env: str | None = None) -> Key:
    return Key(name, parse, allowed, default, env or _env(name))


#: OTLP signals, in the order of their per-signal keys (``otlp.traces_endpoint``...).
SIGNALS = ("traces", "metrics", "logs")
#: Settings that have a generic key (``otlp.<setting>``) and per-signal ones (``otlp.<signal>_<setting>``).
OTLP_SETTINGS = ("endpoint", "protocol", "headers", "compression", "timeout_ms", "certificate", "client_key",
                 "client_certificate")
_URL = "an http:// or https:// URL, or empty"
_PROTOCOLS = ("http/protobuf", "http/json", "grpc")
_HEADERS = ("k=v pairs separated by commas (percent-encoded) or a table of strings, "
            "with HTTP token names and no control characters in values")


#: Operations of system / DDL statements (seed 001 §7 class S).
DDL_OPERATIONS = ("CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "GRANT", "REVOKE")
#: Default ``slo.rules``: DDL and maintenance are S, bulk loads B, everything else
#: ``slo.default_class`` (L).  Latency is deliberately not used by default: moving slow
#: statements out of L would hide exactly the violations L's SLO is about.
DEFAULT_SLO_RULES = (
    ("S", DDL_OPERATIONS + ("VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "OPTIMIZE"), (), None, None),
    ("B", ("COPY", "LOAD"), (), None, None),
)


def _otlp_keys() -> list[Key]:
    """``otlp.*``: the generic settings and their per-signal overrides (OTLP exporter spec).

    A per-signal key unset (``None``) falls back to the generic one; see ``ats.config._otlp``.
    """
    settings: list[tuple[str, v.Parser, str, object]] = [
        ("endpoint", v.url_or_empty, _URL, ""),
        ("protocol", v.one_of(*_PROTOCOLS), "one of " + ", ".join(_PROTOCOLS), "http/protobuf"),
        ("headers", v.headers, _HEADERS, {}),
        ("compression", v.one_of("gzip", "none"), "one of gzip, none", "none"),
        ("timeout_ms", v.integer(1, 3_600_000), "an integer of milliseconds between 1 and 3600000", 10_000),
        ("certificate", v.optional(v.existing_file), "none or the path of an existing PEM file", None),
        ("client_key", v.optional(v.existing_file), "none or the path of an existing PEM file", None),
        ("client_certificate", v.optional(v.existing_file), "none or the path of an existing PEM file", None),
    ]
    assert tuple(name for name, *_ in settings) == OTLP_SETTINGS
    out = [_k(f"otlp.{name}", parse, allowed, default) for name, parse, allowed, default in settings]
    for signal in SIGNALS:
        out.append(_k(f"otlp.{signal}_exporter", v.one_of("otlp", "none"), "one of otlp, none", "otlp"))
        for name, parse, allowed, _default in settings:
            out.append(_k(f"otlp.{signal}_{name}", v.optional(parse), f"none (use otlp.{name}) or {allowed}",
                          None))
    out += [
        _k("otlp.metrics_temporality", v.one_of("cumulative", "delta", "lowmemory"),
           "one of cumulative, delta, lowmemory", "cumulative"),
        _k("otlp.spool_dir", v.path, "a directory path", None),
        _k("otlp.spool_max_bytes", v.spool_size,
           "0 (no spool) or a byte size between 1MiB and 1TiB (an integer or e.g. 256MiB)", 64 * MIB),
    ]
    return out


KEYS: dict[str, Key] = {k.name: k for k in (
    _k("service.name", v.nonempty_text, "a non-empty string", None),
    _k("service.resource_attributes", v.resource_attributes,
       "k=v pairs separated by commas (percent-encoded) or a table of strings", {}),
    _k("tenant", v.text, "a string", ""),
    _k("workspace", v.text, "a string", ""),
    _k("region", v.text, "a string", ""),
    _k("mode", v.one_of("prod", "dev"), "one of prod, dev", "prod"),
    _k("home", v.path, "a directory path", None),
    _k("disabled", v.parse_bool, _BOOL, False),
    _k("store.enabled", v.parse_bool, _BOOL, True),
    _k("store.path", v.path, "a file path", None),
    _k("jsonl.enabled", v.parse_bool, _BOOL, False),
    _k("jsonl.dir", v.path, "a directory path", None),
    _k("jsonl.max_file_bytes", v.byte_size(4096, 1 << 40),
       "a byte size between 4KiB and 1TiB (an integer or e.g. 64MiB, 10MB)", 128 * MIB),
    _k("jsonl.max_total_bytes", v.optional(v.byte_size(4096, 1 << 50)),
       "none or a byte size of at least 4KiB (an integer or e.g. 1GiB, 500MB)", None),
    _k("ring.bytes", v.byte_size(64 << 10, 64 * MIB),
       "a byte size between 64KiB and 64MiB (an integer or e.g. 16MiB)", 16 * MIB),
    _k("flush.interval_ms", v.integer(1, 60_000), "an integer between 1 and 60000", 50),
    _k("flush.batch_max_records", v.integer(1, 1_000_000), "an integer between 1 and 1000000", 4096),
    _k("flush.handoff_max_records", v.integer(1, 10_000_000), "an integer between 1 and 10000000", 65_536),
    _k("shutdown.timeout_s", v.number(0, 600), "a number of seconds between 0 and 600", 5.0),
    _k("sampling.ratio", v.number(0, 1), _RATIO, 1.0),
    _k("sampling.parent_based", v.parse_bool, _BOOL, True),
    _k("sampling.rules", v.sampling_rules,
       "a list of {prefix, ok_rate, error_rate} with rates between 0 and 1 "
       "(env: JSON or prefix:ok_rate[:error_rate],...)", ()),
    _k("sampling.rate_limit_per_second", v.optional(v.number(0, 1e9, lo_open=True)),
       "none or a number of spans per second above 0", None),
    _k("sampling.daily_cap", v.optional(v.integer(1, 1 << 62)), "none or an integer of at least 1", None),
    _k("tail.enabled", v.parse_bool, _BOOL, False),
    _k("tail.latency_ms", v.number(0, 3_600_000, lo_open=True),
       "a number of milliseconds above 0 (at most 3600000)", 1000.0),
    _k("tail.base_ratio", v.number(0, 1), _RATIO, 0.1),
    _k("plans.enabled", v.parse_bool, _BOOL, False),
    _k("plans.latency_ms", v.number(0, 3_600_000), "a number of milliseconds between 0 and 3600000", 500.0),
    _k("plans.interval_s", v.number(0, 86_400), "a number of seconds between 0 and 86400", 300.0),
    _k("plans.queue_size", v.integer(1, 10_000), "an integer between 1 and 10000", 64),
    _k("capabilities.enabled", v.parse_bool, _BOOL, False),
    _k("genai.capture_content", v.parse_bool, _BOOL, False),
    _k("resources.enabled", v.parse_bool, _BOOL, False),
    _k("resources.interval_s", v.number(1, 3600), "a number of seconds between 1 and 3600", 10.0),
    _k("redaction.enabled", v.parse_bool, _BOOL, True),
    _k("redaction.patterns", v.redaction_patterns,
       "a list of {name, regex, marker} (Rust regex syntax; env: JSON)", ()),
    _k("metrics.interval_ms", v.integer(100, 3_600_000), "an integer between 100 and 3600000", 10_000),
    _k("retention.traces_days", v.days(1, 365), "a number of days between 1 and 365", 30),
    _k("retention.logs_days", v.days(1, 365), "a number of days between 1 and 365", 30),
    _k("retention.metrics_days", v.days(1, 3650), "a number of days between 1 and 3650", 400),
    _k("retention.learning_days", v.days(0, 3650), "a number of days between 0 and 3650", 90),
    _k("plugins.disabled", v.names, "plugin names separated by commas or a list", (),
       env="ATS_DISABLED_PLUGINS"),
    _k("plugins.allowed", v.allow_list,
       "all, or plugin names separated by commas or a list", None, env="ATS_PLUGINS"),
    _k("plugins.trace_hooks", v.parse_bool, _BOOL, False, env="ATS_TRACE_HOOKS"),
    _k("slo.rules", v.slo_rules,
       "an ordered list of {class (L, B, A or S), operations, tables, summary, min_latency_ms} "
       "(operations/tables: names or lists, summary: a glob; env: JSON)", DEFAULT_SLO_RULES),
    _k("slo.default_class", v.slo_class, "one of L, B, A, S", "L"),
    _k("sqlcommenter.enabled", v.parse_bool, _BOOL, False),
    _k("mcp.capture_content", v.parse_bool, _BOOL, False),
    _k("export.enabled", v.parse_bool, _BOOL, False),
    _k("export.endpoint", v.url_or_empty, "an http:// or https:// URL, or empty", ""),
    *_otlp_keys(),
)}

BY_ENV: dict[str, Key] = {k.env: k for k in KEYS.values()}

#: ``ATS_*`` variables that are not configuration keys and are never rejected.
#: Names starting with ``ATS__`` (two underscores) are reserved for ATS's own
#: process plumbing (``ats-run`` bootstrap) and ignored as well.
RESERVED_ENV = frozenset({"ATS_CONFIG"})

SECTIONS = frozenset(k.split(".", 1)[0] for k in KEYS if "." in k)

# Which plugins are loaded, and whether ATS runs at all, are decided once per process.
_RESTART_ONLY = ("plugins.", "disabled")


def reloadable_keys() -> frozenset[str]:
    """Keys ``ats.reload()`` / SIGHUP apply without a restart.

    Every key but ``disabled`` and ``plugins.*``: the pipeline (sampling, tail sampling,
    redaction, sinks, export, ring, flush, metrics, retention, resource) is rebuilt, side
    queries, the resource sampler and ``ats_configure`` get the new configuration, and the
    instrumentations read theirs (``slo.*``, ``*.capture_content``, ``sqlcommenter.*``) per
    call. A change to the others is named on stderr and waits for the next start.
    """
    return frozenset(k for k in KEYS if not k.startswith(_RESTART_ONLY))
