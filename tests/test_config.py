"""ats.config: layers, env mappings, file formats, validation messages, provenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ats.config import (
    SloRule,
    Config,
    ConfigError,
    RedactionPattern,
    SamplingRule,
    env_var,
    keys,
    load_config,
    reloadable_keys,
)

import ats as _ats_for_path

# Where the *installed* ats lives (site-packages in CI, python/ in an editable install):
# subprocesses must import the built package, not the source tree.
ATS_ROOT = str(Path(_ats_for_path.__file__).resolve().parent.parent)


@pytest.fixture(autouse=True)
def _script_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/srv/app/worker.py"])


def load(tmp_path: Path, environ: dict[str, str] | None = None, **kw: Any) -> Config:
    return load_config(environ=environ or {}, cwd=tmp_path, **kw)


def error(tmp_path: Path, environ: dict[str, str] | None = None, **kw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, environ, **kw)
    assert "\n" not in str(info.value)
    return info.value


# --- defaults -------------------------------------------------------------------

def test_defaults(tmp_path: Path) -> None:
    c = load(tmp_path)
    home = tmp_path.resolve() / ".ats"
    assert c.to_dict() == {
        "service": {"name": "worker", "resource_attributes": {}},
        "tenant": "", "workspace": "", "region": "", "mode": "prod", "home": str(home), "disabled": False,
        "store": {"enabled": True, "path": str(home / "ats.db")},
        "jsonl": {"enabled": False, "dir": str(home / "jsonl"), "max_file_bytes": 128 << 20,
                  "max_total_bytes": None},
        "ring": {"bytes": 16 << 20},
        "flush": {"interval_ms": 50, "batch_max_records": 4096, "handoff_max_records": 65536},
        "shutdown": {"timeout_s": 5.0},
        "sampling": {"ratio": 1.0, "parent_based": True, "rules": [], "rate_limit_per_second": None,
                     "daily_cap": None},
        "tail": {"enabled": False, "latency_ms": 1000.0, "base_ratio": 0.1},
        "plans": {"enabled": False, "latency_ms": 500.0, "interval_s": 300.0, "queue_size": 64},
        "capabilities": {"enabled": False},
        "genai": {"capture_content": False},
        "resources": {"enabled": False, "interval_s": 10.0},
        "redaction": {"enabled": True, "patterns": []},
        "metrics": {"interval_ms": 10000},
        "retention": {"traces_days": 30, "logs_days": 30, "metrics_days": 400, "learning_days": 90},
        "plugins": {"disabled": [], "allowed": None, "trace_hooks": False},
        "export": {"enabled": False, "endpoint": ""},
        "slo": {"rules": [
            {"slo_class": "S", "operations": ["CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "GRANT",
                                              "REVOKE", "VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "OPTIMIZE"],
             "tables": [], "summary": None, "min_latency_ms": None},
            {"slo_class": "B", "operations": ["COPY", "LOAD"], "tables": [], "summary": None,
             "min_latency_ms": None},
        ], "default_class": "L"},
        "sqlcommenter": {"enabled": False},
        "mcp": {"capture_content": False},
        "otlp": {
            "endpoint": "", "protocol": "http/protobuf", "headers": {}, "compression": "none", "timeout_ms": 10000,
            "certificate": None, "client_key": None, "client_certificate": None,
            **{f"{s}_{k}": None for s in ("traces", "metrics", "logs")
               for k in ("endpoint", "protocol", "headers", "compression", "timeout_ms", "certificate",
                         "client_key", "client_certificate")},
            "traces_exporter": "otlp", "metrics_exporter": "otlp", "logs_exporter": "otlp",
            "metrics_temporality": "cumulative", "spool_dir": str(home / "otlp-spool"), "spool_max_bytes": 64 << 20,
        },
    }
    assert {src for _, _, src in c.as_rows()} == {"default"}
    assert len(c.as_rows()) == len(keys()) == 51 + 38
    assert c.pipeline_kwargs()["otlp"] is None


@pytest.mark.parametrize("argv0, name", [
    ("app.py", "app"), ("/x/pkg/__main__.py", "pkg"), ("-c", "unknown_service"), ("", "unknown_service"),
])
def test_default_service_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv0: str, name: str) -> None:
    monkeypatch.setattr(sys, "argv", [argv0])
    assert load(tmp_path).service.name == name


# --- precedence -------------------------------------------------------------------

def test_precedence_across_all_layers(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text('tenant = "file-tenant"\nmode = "dev"\n'
                                       '[sampling]\nratio = 0.1\n[service]\nname = "from-file"\n')
    otel = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.2",
            "OTEL_SERVICE_NAME": "from-otel"}
    ats = {"ATS_SAMPLING_RATIO": "0.3", "ATS_SERVICE_NAME": "from-ats"}
    over = {"sampling.ratio": 0.4}
    f = f"file {tmp_path.resolve() / 'ats.toml'}"

    c = load(tmp_path, {**otel, **ats}, overrides=over)
    assert (c.sampling.ratio, c.provenance("sampling.ratio")) == (0.4, "init()")
    assert (c.service.name, c.provenance("service.name")) == ("from-ats", "env ATS_SERVICE_NAME")
    assert (c.tenant, c.provenance("tenant")) == ("file-tenant", f)
    assert (c.mode, c.provenance("mode")) == ("dev", f)
    assert c.provenance("workspace") == "default"

    c = load(tmp_path, {**otel, **ats})
    assert (c.sampling.ratio, c.provenance("sampling.ratio")) == (0.3, "env ATS_SAMPLING_RATIO")
    c = load(tmp_path, otel)
    assert (c.sampling.ratio, c.provenance("sampling.ratio")) == (0.2, "env OTEL_TRACES_SAMPLER_ARG")
    assert (c.service.name, c.provenance("service.name")) == ("from-otel", "env OTEL_SERVICE_NAME")
    c = load(tmp_path)
    assert (c.sampling.ratio, c.provenance("sampling.ratio")) == (0.1, f)
    assert (c.service.name, c.provenance("service.name")) == ("from-file", f)
    (tmp_path / "ats.toml").unlink()
    c = load(tmp_path)
    assert (c.sampling.ratio, c.provenance("sampling.ratio")) == (1.0, "default")


def test_overrides_forms(tmp_path: Path) -> None:
    c = load(tmp_path, overrides={"sampling_ratio": 0.5, "tail": {"enabled": True},
                                  "flush.interval_ms": 50, "tenant": "t"})
    assert (c.sampling.ratio, c.tail.enabled, c.flush.interval_ms, c.tenant) == (0.5, True, 50, "t")
    assert {c.provenance(k) for k in ("sampling.ratio", "tail.enabled", "flush.interval_ms", "tenant")} == {"init()"}


def test_mapping_source(tmp_path: Path) -> None:
    c = load(tmp_path, source={"ring": {"bytes": "1MiB"}}, overrides={"ring_bytes": "2MiB"})
    assert (c.ring.bytes, c.provenance("ring.bytes")) == (2 << 20, "init()")
    c = load(tmp_path, source={"ring": {"bytes": "1MiB"}})
    assert (c.ring.bytes, c.provenance("ring.bytes")) == (1 << 20, "init(config)")


def test_empty_env_var_is_unset(tmp_path: Path) -> None:
    c = load(tmp_path, {"ATS_TENANT": "", "OTEL_SERVICE_NAME": "  "})
    assert (c.tenant, c.provenance("tenant"), c.service.name) == ("", "default", "worker")


def test_reserved_env_vars_are_ignored(tmp_path: Path) -> None:
    assert load(tmp_path, {"ATS__BOOTSTRAPPED": "1", "PATH": "/bin", "OTELX": "1"}).tenant == ""


# --- files ----------------------------------------------------------------------

def test_ats_toml(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text(
        'tenant = "acme"\nhome = "state"\n'
        '[sampling]\nratio = 0.25\nrules = [{prefix = "driver.", ok_rate = 0.1}, '
        '{prefix = "kernel.", ok_rate = 0.5, error_rate = 0.9}]\n'
        '[redaction]\npatterns = [{name = "emp", regex = "EMP-[0-9]{6}", marker = "[EMP]"}]\n'
        '[jsonl]\nenabled = true\nmax_file_bytes = "10MB"\n'
    )
    c = load(tmp_path)
    root = tmp_path.resolve()
    assert c.tenant == "acme" and c.sampling.ratio == 0.25
    assert c.sampling.rules == (SamplingRule("driver.", 0.1, 1.0), SamplingRule("kernel.", 0.5, 0.9))
    assert c.redaction.patterns == (RedactionPattern("emp", "EMP-[0-9]{6}", "[EMP]"),)
    assert (c.jsonl.enabled, c.jsonl.max_file_bytes) == (True, 10_000_000)
    # Relative paths are anchored at the file's directory; derived paths follow home.
    assert (c.home, c.store.path, c.jsonl.dir) == (root / "state", root / "state/ats.db", root / "state/jsonl")
    assert c.provenance("store.path") == "default"


def test_pyproject_tool_ats(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ats]\nworkspace = "prod-eu"\n'
                                             '[tool.ats.retention]\ntraces_days = 7\n')
    c = load(tmp_path)
    src = f"file {tmp_path.resolve() / 'pyproject.toml'}"
    assert (c.workspace, c.retention.traces_days) == ("prod-eu", 7)
    assert c.provenance("retention.traces_days") == src


def test_discovery_order(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.ats]: skipped
    (tmp_path / "ats.yml").write_text("tenant: from-yml\n")
    assert load(tmp_path).tenant == "from-yml"
    (tmp_path / "ats.yaml").write_text("tenant: from-yaml\n")
    assert load(tmp_path).tenant == "from-yaml"
    (tmp_path / "pyproject.toml").write_text('[tool.ats]\ntenant = "from-pyproject"\n')
    assert load(tmp_path).tenant == "from-pyproject"
    (tmp_path / "ats.toml").write_text('tenant = "from-ats-toml"\n')
    assert load(tmp_path).tenant == "from-ats-toml"
    other = tmp_path / "other.toml"
    other.write_text('tenant = "from-env-path"\n')
    assert load(tmp_path, {"ATS_CONFIG": "other.toml"}).tenant == "from-env-path"
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("tenant: explicit\n")
    c = load(tmp_path, {"ATS_CONFIG": "other.toml"}, source=explicit)
    assert (c.tenant, c.provenance("tenant")) == ("explicit", f"file {explicit.resolve()}")


def test_missing_or_unsupported_file(tmp_path: Path) -> None:
    e = error(tmp_path, {"ATS_CONFIG": "nope.toml"})
    assert str(e) == (f"ats config: config = {tmp_path.resolve() / 'nope.toml'} (from env ATS_CONFIG): "
                      "expected an existing .toml, pyproject.toml, .yaml or .yml file")
    (tmp_path / "x.ini").write_text("")
    e = error(tmp_path, source=str(tmp_path / "x.ini"))
    assert (e.key, e.source) == ("config", "init(config=...)")


def test_malformed_toml_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text("tenant = \n")
    e = error(tmp_path)
    p = tmp_path.resolve() / "ats.toml"
    assert str(e).startswith(f"ats config: config = {p} (from file {p}): expected valid TOML (")
    (tmp_path / "ats.toml").unlink()
    (tmp_path / "ats.yaml").write_text("tenant: [\n")
    assert error(tmp_path).allowed.startswith("valid YAML (")
    (tmp_path / "ats.yaml").write_text("- a\n- b\n")
    assert error(tmp_path).allowed == "a table of settings at the top level"


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ats.yaml").write_text("tenant: x\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    p = tmp_path.resolve() / "ats.yaml"
    assert str(error(tmp_path)) == (f"ats config: config = {p} (from file {p}): expected PyYAML installed "
                                    "to read YAML (pip install pyyaml), or a .toml file")


def test_yaml_ats_shape(tmp_path: Path) -> None:
    (tmp_path / "ats.yaml").write_text(
        "service:\n  name: api\n  resource_attributes:\n    deployment.environment: staging\n"
        "    sqlx.workspace: ws1\n"
        "sampling:\n  ratio: 0.5\n  rules:\n    - {prefix: driver., ok_rate: 0.2, error_rate: 1}\n"
        "ring:\n  bytes: 32MiB\nplugins:\n  disabled: [ats-sqlite3]\n"
    )
    c = load(tmp_path)
    assert (c.service.name, c.sampling.ratio, c.ring.bytes, c.plugins.disabled) == (
        "api", 0.5, 32 << 20, ("ats-sqlite3",))
    assert dict(c.service.resource_attributes) == {"deployment.environment": "staging", "sqlx.workspace": "ws1"}
    assert c.workspace == "ws1"
    assert c.sampling.rules == (SamplingRule("driver.", 0.2, 1.0),)


def test_yaml_seed_004_shape(tmp_path: Path) -> None:
    (tmp_path / "ats.yaml").write_text(
        "telemetry:\n  enabled: true\n  sampling:\n    rate: 10\n  retention:\n    days: 14\n"
        "  privacy:\n    scrub_pii: true\n  export:\n    enabled: false\n    endpoint: \"\"\n"
    )
    c = load(tmp_path)
    src = f"file {tmp_path.resolve() / 'ats.yaml'}"
    assert (c.disabled, c.sampling.ratio, c.retention.traces_days, c.redaction.enabled) == (False, 0.1, 14, True)
    assert (c.export.enabled, c.export.endpoint) == (False, "")
    assert c.provenance("sampling.ratio") == src


def test_yaml_seed_004_disabled_and_debug_redact(tmp_path: Path) -> None:
    (tmp_path / "ats.yaml").write_text("mode: dev\ntelemetry:\n  enabled: false\n  debugRedact: false\n")
    c = load(tmp_path)
    assert (c.disabled, c.redaction.enabled, c.mode) == (True, False, "dev")
    (tmp_path / "ats.yaml").write_text("telemetry:\n  debugRedact: false\n")
    p = tmp_path.resolve() / "ats.yaml"
    assert str(error(tmp_path)) == (
        f"ats config: telemetry.debugRedact = false (from file {p}): expected true unless mode = dev "
        "(turning redaction off, telemetry.debugRedact=false, is dev-only)")


def test_yaml_seed_001_shape(tmp_path: Path) -> None:
    (tmp_path / "ats.yaml").write_text(
        "observability:\n  otel:\n    endpoint: http://otel:4317\n    serviceName: sqlx-os\n    sampling: 0.2\n"
        "  slo:\n    refreshSec: 60\n    store: /etc/sqlx/slo.yml\n  alerts:\n    provider: pagerduty\n"
        "  retention:\n    traces: 30d\n    metrics: 400d\n    logs: 7d\n"
    )
    c = load(tmp_path)
    assert (c.service.name, c.sampling.ratio, c.export.endpoint, c.export.enabled) == (
        "sqlx-os", 0.2, "http://otel:4317", True)
    assert (c.retention.traces_days, c.retention.metrics_days, c.retention.logs_days) == (30, 400, 7)


def test_yaml_seed_shape_errors(tmp_path: Path) -> None:
    p = tmp_path.resolve() / "ats.yaml"
    (tmp_path / "ats.yaml").write_text("telemetry:\n  sampling:\n    rate: 150\n")
    assert str(error(tmp_path)) == (f"ats config: telemetry.sampling.rate = 150 (from file {p}): "
                                    "expected a percentage between 0 and 100")
    (tmp_path / "ats.yaml").write_text("telemetry:\n  retention:\n    days: 400\n")
    assert str(error(tmp_path)) == (f"ats config: telemetry.retention.days = 400 (from file {p}): "
                                    "expected a number of days between 1 and 365")
    (tmp_path / "ats.yaml").write_text("telemetry:\n  sampling:\n    rat: 5\n")
    assert str(error(tmp_path)) == (f"ats config: telemetry.sampling.rat = 5 (from file {p}): unknown key, "
                                    "expected a key of the documented seed shape; "
                                    "did you mean telemetry.sampling.rate?")
    (tmp_path / "ats.yaml").write_text("telemetry:\n  enabled: maybe\n")
    assert str(error(tmp_path)) == (f"ats config: telemetry.enabled = maybe (from file {p}): "
                                    "expected a boolean (true/false, 1/0, yes/no, on/off)")


# --- environment ------------------------------------------------------------------

ENV_CASES: list[tuple[str, str, str, Any]] = [
    ("ATS_SERVICE_NAME", "svc", "service.name", "svc"),
    ("ATS_SERVICE_RESOURCE_ATTRIBUTES", "a=1,b=x%2Cy", "service.resource_attributes", {"a": "1", "b": "x,y"}),
    ("ATS_TENANT", "acme", "tenant", "acme"),
    ("ATS_SLO_DEFAULT_CLASS", "a", "slo.default_class", "A"),
    ("ATS_SLO_RULES", '[{"class": "A", "tables": "report_*", "min_latency_ms": 5}]', "slo.rules",
     (SloRule("A", (), ("report_*",), None, 5.0),)),
    ("ATS_SQLCOMMENTER_ENABLED", "on", "sqlcommenter.enabled", True),
    ("ATS_MCP_CAPTURE_CONTENT", "yes", "mcp.capture_content", True),
    ("ATS_WORKSPACE", "prod-eu", "workspace", "prod-eu"),
    ("ATS_REGION", "eu-west-1", "region", "eu-west-1"),
    ("ATS_MODE", "DEV", "mode", "dev"),
    ("ATS_HOME", "/var/ats", "home", Path("/var/ats")),
    ("ATS_DISABLED", "yes", "disabled", True),
    ("ATS_STORE_ENABLED", "off", "store.enabled", False),
    ("ATS_STORE_PATH", "/data/t.db", "store.path", Path("/data/t.db")),
    ("ATS_JSONL_ENABLED", "1", "jsonl.enabled", True),
    ("ATS_JSONL_DIR", "/data/jsonl", "jsonl.dir", Path("/data/jsonl")),
    ("ATS_JSONL_MAX_FILE_BYTES", "64MiB", "jsonl.max_file_bytes", 64 << 20),
    ("ATS_JSONL_MAX_TOTAL_BYTES", "1GiB", "jsonl.max_total_bytes", 1 << 30),
    ("ATS_RING_BYTES", "8MiB", "ring.bytes", 8 << 20),
    ("ATS_FLUSH_INTERVAL_MS", "50", "flush.interval_ms", 50),
    ("ATS_FLUSH_BATCH_MAX_RECORDS", "1000", "flush.batch_max_records", 1000),
    ("ATS_FLUSH_HANDOFF_MAX_RECORDS", "500", "flush.handoff_max_records", 500),
    ("ATS_SHUTDOWN_TIMEOUT_S", "2.5", "shutdown.timeout_s", 2.5),
    ("ATS_SAMPLING_RATIO", "0.25", "sampling.ratio", 0.25),
    ("ATS_SAMPLING_PARENT_BASED", "false", "sampling.parent_based", False),
    ("ATS_SAMPLING_RULES", "driver.:0.1,kernel.:0.5:0.75", "sampling.rules",
     (SamplingRule("driver.", 0.1, 1.0), SamplingRule("kernel.", 0.5, 0.75))),
    ("ATS_SAMPLING_RATE_LIMIT_PER_SECOND", "100", "sampling.rate_limit_per_second", 100.0),
    ("ATS_SAMPLING_DAILY_CAP", "100000", "sampling.daily_cap", 100000),
    ("ATS_TAIL_ENABLED", "on", "tail.enabled", True),
    ("ATS_TAIL_LATENCY_MS", "250", "tail.latency_ms", 250.0),
    ("ATS_PLANS_ENABLED", "yes", "plans.enabled", True),
    ("ATS_PLANS_LATENCY_MS", "250", "plans.latency_ms", 250.0),
    ("ATS_PLANS_INTERVAL_S", "0", "plans.interval_s", 0.0),
    ("ATS_PLANS_QUEUE_SIZE", "8", "plans.queue_size", 8),
    ("ATS_CAPABILITIES_ENABLED", "1", "capabilities.enabled", True),
    ("ATS_GENAI_CAPTURE_CONTENT", "true", "genai.capture_content", True),
    ("ATS_RESOURCES_ENABLED", "yes", "resources.enabled", True),
    ("ATS_RESOURCES_INTERVAL_S", "2.5", "resources.interval_s", 2.5),
    ("ATS_TAIL_BASE_RATIO", "0", "tail.base_ratio", 0.0),
    ("ATS_REDACTION_ENABLED", "true", "redaction.enabled", True),
    ("ATS_REDACTION_PATTERNS", '[{"name": "emp", "regex": "EMP-\\\\d+", "marker": "[EMP]"}]',
     "redaction.patterns", (RedactionPattern("emp", "EMP-\\d+", "[EMP]"),)),
    ("ATS_METRICS_INTERVAL_MS", "60000", "metrics.interval_ms", 60000),
    ("ATS_RETENTION_TRACES_DAYS", "7d", "retention.traces_days", 7),
    ("ATS_RETENTION_LOGS_DAYS", "14", "retention.logs_days", 14),
    ("ATS_RETENTION_METRICS_DAYS", "365", "retention.metrics_days", 365),
    ("ATS_RETENTION_LEARNING_DAYS", "0", "retention.learning_days", 0),
    ("ATS_DISABLED_PLUGINS", "ats-sqlite3, other,ats-sqlite3", "plugins.disabled", ("ats-sqlite3", "other")),
    ("ATS_PLUGINS", "ats-sqlite3", "plugins.allowed", ("ats-sqlite3",)),
    ("ATS_TRACE_HOOKS", "TRUE", "plugins.trace_hooks", True),
    ("ATS_EXPORT_ENABLED", "false", "export.enabled", False),
    ("ATS_EXPORT_ENDPOINT", "https://collector:4318", "export.endpoint", "https://collector:4318"),
    *[(f"ATS_OTLP_{prefix.upper()}{setting.upper()}", raw, f"otlp.{prefix}{setting}", expected)
      for prefix in ("", "traces_", "metrics_", "logs_")
      for setting, raw, expected in [
          ("endpoint", "https://collector:4318", "https://collector:4318"),
          ("protocol", "GRPC", "grpc"),
          ("headers", "api-key=a%3Db, x=y", {"api-key": "a=b", "x": "y"}),
          ("compression", "gzip", "gzip"),
          ("timeout_ms", "2500", 2500),
          ("certificate", __file__, Path(__file__)),
          ("client_key", __file__, Path(__file__)),
          ("client_certificate", __file__, Path(__file__)),
      ]],
    *[(f"ATS_OTLP_{signal.upper()}_EXPORTER", "None", f"otlp.{signal}_exporter", "none")
      for signal in ("traces", "metrics", "logs")],
    ("ATS_OTLP_METRICS_TEMPORALITY", "Delta", "otlp.metrics_temporality", "delta"),
    ("ATS_OTLP_SPOOL_DIR", "/data/spool", "otlp.spool_dir", Path("/data/spool")),
    ("ATS_OTLP_SPOOL_MAX_BYTES", "1GiB", "otlp.spool_max_bytes", 1 << 30),
]


@pytest.mark.parametrize("var, raw, key, expected", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_every_ats_env_var(tmp_path: Path, var: str, raw: str, key: str, expected: Any) -> None:
    c = load(tmp_path, {var: raw})
    got = c.get(key)
    assert (dict(got) if key == "service.resource_attributes" else got) == expected
    assert c.provenance(key) == f"env {var}"
    assert env_var(key) == var


def test_env_cases_cover_every_key() -> None:
    assert sorted(c[2] for c in ENV_CASES) == keys()


def test_plugins_allowed_all(tmp_path: Path) -> None:
    assert load(tmp_path, {"ATS_PLUGINS": "all"}).plugins.allowed is None


@pytest.mark.parametrize("sampler, arg, ratio, parent_based, source", [
    ("always_on", "0.5", 1.0, False, "env OTEL_TRACES_SAMPLER"),
    ("always_off", None, 0.0, False, "env OTEL_TRACES_SAMPLER"),
    ("traceidratio", "0.125", 0.125, False, "env OTEL_TRACES_SAMPLER_ARG"),
    ("traceidratio", None, 1.0, False, "env OTEL_TRACES_SAMPLER"),
    ("parentbased_always_on", None, 1.0, True, "env OTEL_TRACES_SAMPLER"),
    ("parentbased_always_off", None, 0.0, True, "env OTEL_TRACES_SAMPLER"),
    ("ParentBased_TraceIdRatio", "0.5", 0.5, True, "env OTEL_TRACES_SAMPLER_ARG"),
])
def test_otel_traces_sampler(tmp_path: Path, sampler: str, arg: str | None, ratio: float,
                             parent_based: bool, source: str) -> None:
    env = {"OTEL_TRACES_SAMPLER": sampler, **({"OTEL_TRACES_SAMPLER_ARG": arg} if arg else {})}
    c = load(tmp_path, env)
    assert (c.sampling.ratio, c.sampling.parent_based) == (ratio, parent_based)
    assert c.provenance("sampling.ratio") == source
    assert c.provenance("sampling.parent_based") == "env OTEL_TRACES_SAMPLER"


def test_otel_sampler_arg_alone_is_ignored(tmp_path: Path) -> None:
    c = load(tmp_path, {"OTEL_TRACES_SAMPLER_ARG": "0.5"})
    assert (c.sampling.ratio, c.provenance("sampling.ratio")) == (1.0, "default")


def test_otel_sdk_disabled(tmp_path: Path) -> None:
    c = load(tmp_path, {"OTEL_SDK_DISABLED": "true"})
    assert (c.disabled, c.provenance("disabled")) == (True, "env OTEL_SDK_DISABLED")
    c = load(tmp_path, {"OTEL_SDK_DISABLED": "true", "ATS_DISABLED": "false"})
    assert (c.disabled, c.provenance("disabled")) == (False, "env ATS_DISABLED")


def test_otel_resource_attributes(tmp_path: Path) -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES":
           "service.name=billing%20api, sqlx.tenant=acme,ats.tenant=acme%2Cinc,sqlx.workspace=prod-eu,"
           "cloud.region=eu-west-1,note=a%3Db,empty="}
    c = load(tmp_path, env)
    src = "env OTEL_RESOURCE_ATTRIBUTES"
    assert dict(c.service.resource_attributes) == {
        "service.name": "billing api", "sqlx.tenant": "acme", "ats.tenant": "acme,inc",
        "sqlx.workspace": "prod-eu", "cloud.region": "eu-west-1", "note": "a=b", "empty": ""}
    assert (c.service.name, c.tenant, c.workspace, c.region) == ("billing api", "acme,inc", "prod-eu", "eu-west-1")
    assert {c.provenance(k) for k in ("service.name", "tenant", "workspace", "region")} == {src}
    # OTEL_SERVICE_NAME beats the attribute; ATS_TENANT (a higher layer) beats the derived tenant.
    c = load(tmp_path, {**env, "OTEL_SERVICE_NAME": "svc", "ATS_TENANT": "t"})
    assert (c.service.name, c.provenance("service.name"), c.tenant) == ("svc", "env OTEL_SERVICE_NAME", "t")
    # Rendering percent-encodes again so the row can be pasted back.
    row = dict((k, v) for k, v, _ in c.as_rows())["service.resource_attributes"]
    assert dict(load(tmp_path, {"OTEL_RESOURCE_ATTRIBUTES": row}).service.resource_attributes) == dict(
        c.service.resource_attributes)


def test_bad_resource_attributes(tmp_path: Path) -> None:
    assert str(error(tmp_path, {"OTEL_RESOURCE_ATTRIBUTES": "a=1,broken"})) == (
        "ats config: service.resource_attributes = a=1,broken (from env OTEL_RESOURCE_ATTRIBUTES): "
        "expected k=v pairs separated by commas (percent-encoded) or a table of strings")


# --- validation -----------------------------------------------------------------

BAD: list[tuple[dict[str, str], str]] = [
    ({"ATS_SAMPLING_RATIO": "1.5"},
     "sampling.ratio = 1.5 (from env ATS_SAMPLING_RATIO): expected a number between 0 and 1"),
    ({"ATS_SAMPLING_RATIO": "nan"},
     "sampling.ratio = nan (from env ATS_SAMPLING_RATIO): expected a number between 0 and 1"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
     "sampling.ratio = 2 (from env OTEL_TRACES_SAMPLER_ARG): expected a number between 0 and 1"),
    ({"OTEL_TRACES_SAMPLER": "jaeger_remote"},
     "sampling.ratio = jaeger_remote (from env OTEL_TRACES_SAMPLER): expected one of always_on, always_off, "
     "traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"),
    ({"OTEL_SDK_DISABLED": "maybe"},
     "disabled = maybe (from env OTEL_SDK_DISABLED): expected a boolean (true/false, 1/0, yes/no, on/off)"),
    ({"ATS_MODE": "staging"}, "mode = staging (from env ATS_MODE): expected one of prod, dev"),
    ({"ATS_RING_BYTES": "128MiB"}, "ring.bytes = 128MiB (from env ATS_RING_BYTES): "
     "expected a byte size between 64KiB and 64MiB (an integer or e.g. 16MiB)"),
    ({"ATS_RING_BYTES": "16 parsecs"}, "ring.bytes = '16 parsecs' (from env ATS_RING_BYTES): "
     "expected a byte size between 64KiB and 64MiB (an integer or e.g. 16MiB)"),
    ({"ATS_JSONL_MAX_FILE_BYTES": "1KB"}, "jsonl.max_file_bytes = 1KB (from env ATS_JSONL_MAX_FILE_BYTES): "
     "expected a byte size between 4KiB and 1TiB (an integer or e.g. 64MiB, 10MB)"),
    ({"ATS_JSONL_MAX_TOTAL_BYTES": "1MiB"}, "jsonl.max_total_bytes = 1MiB (from env ATS_JSONL_MAX_TOTAL_BYTES): "
     "expected none or at least jsonl.max_file_bytes (128MiB)"),
    ({"ATS_FLUSH_INTERVAL_MS": "0"},
     "flush.interval_ms = 0 (from env ATS_FLUSH_INTERVAL_MS): expected an integer between 1 and 60000"),
    ({"ATS_FLUSH_BATCH_MAX_RECORDS": "1.5"}, "flush.batch_max_records = 1.5 (from env "
     "ATS_FLUSH_BATCH_MAX_RECORDS): expected an integer between 1 and 1000000"),
    ({"ATS_SHUTDOWN_TIMEOUT_S": "-1"},
     "shutdown.timeout_s = -1 (from env ATS_SHUTDOWN_TIMEOUT_S): expected a number of seconds between 0 and 600"),
    ({"ATS_SAMPLING_RULES": "driver.:0.1,driver.:0.2"}, "sampling.rules = driver.:0.1,driver.:0.2 (from env "
     "ATS_SAMPLING_RULES): expected each prefix at most once (duplicate 'driver.')"),
    ({"ATS_SAMPLING_RULES": "driver.:2"}, "sampling.rules = driver.:2 (from env ATS_SAMPLING_RULES): expected a "
     "list of {prefix, ok_rate, error_rate} with rates between 0 and 1 (env: JSON or prefix:ok_rate[:error_rate],...)"),
    ({"ATS_SAMPLING_RATE_LIMIT_PER_SECOND": "0"}, "sampling.rate_limit_per_second = 0 (from env "
     "ATS_SAMPLING_RATE_LIMIT_PER_SECOND): expected none or a number of spans per second above 0"),
    ({"ATS_SAMPLING_DAILY_CAP": "0"},
     "sampling.daily_cap = 0 (from env ATS_SAMPLING_DAILY_CAP): expected none or an integer of at least 1"),
    ({"ATS_TAIL_LATENCY_MS": "0"}, "tail.latency_ms = 0 (from env ATS_TAIL_LATENCY_MS): "
     "expected a number of milliseconds above 0 (at most 3600000)"),
    ({"ATS_TAIL_BASE_RATIO": "-0.1"},
     "tail.base_ratio = -0.1 (from env ATS_TAIL_BASE_RATIO): expected a number between 0 and 1"),
    ({"ATS_REDACTION_PATTERNS": '[{"name": "x"}]'}, "redaction.patterns = '[{\"name\": \"x\"}]' (from env "
     "ATS_REDACTION_PATTERNS): expected a list of {name, regex, marker} (Rust regex syntax; env: JSON)"),
    ({"ATS_METRICS_INTERVAL_MS": "10"},
     "metrics.interval_ms = 10 (from env ATS_METRICS_INTERVAL_MS): expected an integer between 100 and 3600000"),
    ({"ATS_RETENTION_TRACES_DAYS": "0"},
     "retention.traces_days = 0 (from env ATS_RETENTION_TRACES_DAYS): expected a number of days between 1 and 365"),
    ({"ATS_RETENTION_TRACES_DAYS": "366d"}, "retention.traces_days = 366d (from env ATS_RETENTION_TRACES_DAYS): "
     "expected a number of days between 1 and 365"),
    ({"ATS_RETENTION_METRICS_DAYS": "4000"}, "retention.metrics_days = 4000 (from env "
     "ATS_RETENTION_METRICS_DAYS): expected a number of days between 1 and 3650"),
    ({"ATS_RETENTION_LEARNING_DAYS": "-1"}, "retention.learning_days = -1 (from env "
     "ATS_RETENTION_LEARNING_DAYS): expected a number of days between 0 and 3650"),
    ({"ATS_DISABLED_PLUGINS": "a b"}, "plugins.disabled = 'a b' (from env ATS_DISABLED_PLUGINS): "
     "expected plugin names separated by commas or a list"),
    ({"ATS_PLUGINS": "x;y"},
     "plugins.allowed = x;y (from env ATS_PLUGINS): expected all, or plugin names separated by commas or a list"),
    ({"ATS_TRACE_HOOKS": "2"},
     "plugins.trace_hooks = 2 (from env ATS_TRACE_HOOKS): expected a boolean (true/false, 1/0, yes/no, on/off)"),
    ({"ATS_EXPORT_ENDPOINT": "otel:4317"},
     "export.endpoint = otel:4317 (from env ATS_EXPORT_ENDPOINT): expected an http:// or https:// URL, or empty"),
    ({"ATS_EXPORT_ENABLED": "true"},
     "export.enabled = true (from env ATS_EXPORT_ENABLED): expected false while export.endpoint is empty"),
    ({"ATS_REDACTION_ENABLED": "false"}, "redaction.enabled = false (from env ATS_REDACTION_ENABLED): expected "
     "true unless mode = dev (turning redaction off, telemetry.debugRedact=false, is dev-only)"),
    ({"ATS_HOME": " "}, ""),  # blank: unset, not an error (checked below)
]


@pytest.mark.parametrize("env, message", [b for b in BAD if b[1]], ids=lambda x: str(x)[:40])
def test_validation_messages(tmp_path: Path, env: dict[str, str], message: str) -> None:
    e = error(tmp_path, env)
    assert str(e) == "ats config: " + message
    assert e.source == message.split("(from ", 1)[1].split(")", 1)[0]
    assert e.key == message.split(" = ", 1)[0]
    assert e.value == next(v for v in env.values() if f" = {v} " in message or repr(v) in message)
    assert str(e).endswith("expected " + e.allowed)
    assert isinstance(e, ValueError)


def test_redaction_pattern_regex_is_compiled_natively(tmp_path: Path) -> None:
    e = error(tmp_path, overrides={"redaction": {"patterns": [{"name": "bad", "regex": "(a", "marker": "[X]"}]}})
    assert (e.key, e.source) == ("redaction.patterns", "init()")
    assert e.allowed.startswith("{name, regex, marker} items whose regex compiles (invalid scrub pattern \"bad\": ")
    assert "\n" not in str(e)


def test_type_errors_from_files(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text('[sampling]\nratio = "half"\n[tail]\nenabled = 3\n')
    p = tmp_path.resolve() / "ats.toml"
    assert str(error(tmp_path)) == (f"ats config: sampling.ratio = half (from file {p}): "
                                    "expected a number between 0 and 1")
    assert str(error(tmp_path, overrides={"ring.bytes": True})) == (
        "ats config: ring.bytes = true (from init()): expected a byte size between 64KiB and 64MiB "
        "(an integer or e.g. 16MiB)")


# --- typos ----------------------------------------------------------------------

def test_unknown_keys_suggest_the_closest(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text("[sampling]\nratoi = 0.5\n")
    p = tmp_path.resolve() / "ats.toml"
    e = error(tmp_path)
    assert str(e) == (f"ats config: sampling.ratoi = 0.5 (from file {p}): unknown key, expected a key from "
                      "the configuration reference; did you mean sampling.ratio?")
    assert (e.key, e.value, e.unknown, e.suggestion) == ("sampling.ratoi", 0.5, True, "sampling.ratio")
    (tmp_path / "ats.toml").write_text("[samplng]\nratio = 0.5\n")
    assert error(tmp_path).key == "samplng"
    (tmp_path / "ats.toml").write_text("[jsonl]\nmax_file_size = 10\n")
    assert error(tmp_path).suggestion == "jsonl.max_file_bytes"
    e = error(tmp_path / "nowhere", overrides={"teant": "x"})
    assert str(e) == ("ats config: teant = x (from init()): unknown key, expected a key from the "
                      "configuration reference; did you mean tenant?")
    assert error(tmp_path / "nowhere", overrides={"zzzzzz": 1}).suggestion is None
    assert str(error(tmp_path / "nowhere", overrides={"sampling": 0.5})) == (
        "ats config: sampling = 0.5 (from init()): expected a table of sampling.* keys")


def test_unknown_env_var_suggests_the_closest(tmp_path: Path) -> None:
    assert str(error(tmp_path, {"ATS_SAMPLING_RATOI": "0.5"})) == (
        "ats config: ATS_SAMPLING_RATOI = 0.5 (from env ATS_SAMPLING_RATOI): unknown key, expected a documented "
        "ATS_* variable; did you mean ATS_SAMPLING_RATIO?")
    assert error(tmp_path, {"ATS_PLUGINS_DISABLED": "x"}).suggestion == "ATS_DISABLED_PLUGINS"
    assert error(tmp_path, {"ATS_CONFG": "x"}).suggestion == "ATS_CONFIG"


# --- dev-only redaction switch -----------------------------------------------------

def test_redaction_off_only_in_dev(tmp_path: Path) -> None:
    c = load(tmp_path, {"ATS_MODE": "dev", "ATS_REDACTION_ENABLED": "false"})
    assert (c.redaction.enabled, c.mode) == (False, "dev")
    assert c.pipeline_kwargs()["redact"] is False
    e = error(tmp_path, {"ATS_REDACTION_ENABLED": "0"}, overrides={"mode": "prod"})
    assert (e.key, e.value, e.source) == ("redaction.enabled", "0", "env ATS_REDACTION_ENABLED")
    (tmp_path / "ats.toml").write_text("mode = \"dev\"\n[redaction]\nenabled = false\n")
    assert load(tmp_path).redaction.enabled is False
    assert error(tmp_path, {"ATS_MODE": "prod"}).source == f"file {tmp_path.resolve() / 'ats.toml'}"


# --- value syntax ---------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (65536, 65536), ("65536", 65536), ("64KiB", 65536), ("64kib", 65536), ("100KB", 100_000),
    ("10MB", 10_000_000), ("16MiB", 16 << 20), ("16 MiB", 16 << 20), ("1.5MiB", 1572864),
    ("64MiB", 64 << 20), ("67108864B", 64 << 20),
])
def test_byte_sizes(tmp_path: Path, raw: object, expected: int) -> None:
    assert load(tmp_path, overrides={"ring.bytes": raw}).ring.bytes == expected


@pytest.mark.parametrize("raw", ["", "MiB", "-1MiB", "1XB", "1e6", 1.5, None, "64MiB ish"])
def test_bad_byte_sizes(tmp_path: Path, raw: object) -> None:
    assert error(tmp_path, overrides={"ring.bytes": raw}).key == "ring.bytes"


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True), (True, True), (1, True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("OFF", False), (False, False), (0, False),
])
def test_booleans(tmp_path: Path, raw: object, expected: bool) -> None:
    assert load(tmp_path, overrides={"tail.enabled": raw}).tail.enabled is expected


@pytest.mark.parametrize("raw", ["y", "2", 2, "", None, "enabled"])
def test_bad_booleans(tmp_path: Path, raw: object) -> None:
    assert error(tmp_path, overrides={"tail.enabled": raw}).allowed == "a boolean (true/false, 1/0, yes/no, on/off)"


def test_optional_values_accept_none(tmp_path: Path) -> None:
    c = load(tmp_path, {"ATS_SAMPLING_DAILY_CAP": "none"}, overrides={"jsonl.max_total_bytes": None})
    assert (c.sampling.daily_cap, c.jsonl.max_total_bytes) == (None, None)
    assert c.provenance("sampling.daily_cap") == "env ATS_SAMPLING_DAILY_CAP"


def test_sampling_rules_json_from_env(tmp_path: Path) -> None:
    c = load(tmp_path, {"ATS_SAMPLING_RULES": '[{"prefix": "mcp.", "ok_rate": 0.05}, ["agent.", 0.5, 0.5]]'})
    assert c.sampling.rules == (SamplingRule("mcp.", 0.05, 1.0), SamplingRule("agent.", 0.5, 0.5))


# --- provenance and rendering --------------------------------------------------------

def test_provenance_rows(tmp_path: Path) -> None:
    (tmp_path / "ats.toml").write_text('[ring]\nbytes = "8MiB"\n')
    c = load(tmp_path, {"OTEL_SERVICE_NAME": "svc", "ATS_SAMPLING_RULES": "driver.:0.1",
                        "ATS_DISABLED_PLUGINS": "a,b"}, overrides={"tenant": "acme"})
    rows = c.as_rows()
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    by_key = {k: (v, s) for k, v, s in rows}
    assert by_key["ring.bytes"] == ("8MiB", f"file {tmp_path.resolve() / 'ats.toml'}")
    assert by_key["service.name"] == ("svc", "env OTEL_SERVICE_NAME")
    assert by_key["sampling.rules"] == ("driver.:0.1:1.0", "env ATS_SAMPLING_RULES")
    assert by_key["plugins.disabled"] == ("a,b", "env ATS_DISABLED_PLUGINS")
    assert by_key["tenant"] == ("acme", "init()")
    assert by_key["jsonl.max_total_bytes"] == ("none", "default")
    assert by_key["sampling.ratio"] == ("1.0", "default")
    assert by_key["store.enabled"] == ("true", "default")
    assert by_key["redaction.patterns"] == ("[]", "default")
    assert by_key["store.path"] == (str(tmp_path.resolve() / ".ats" / "ats.db"), "default")


def test_rendered_rows_round_trip_through_env(tmp_path: Path) -> None:
    c = load(tmp_path, overrides={"sampling": {"rules": [{"prefix": "a.", "ok_rate": 0.5}]},
                                  "redaction": {"patterns": [{"name": "n", "regex": "X+", "marker": "[X]"}]},
                                  "ring.bytes": 100_000, "plugins.allowed": ["p"], "mode": "dev"})
    env = {env_var(k): v for k, v, _ in c.as_rows() if v not in ("none", "''", "")}
    again = load(tmp_path, env)
    assert again.to_dict() == c.to_dict()
    assert again.changed_keys(c) == frozenset()


def test_provenance_of_unknown_key(tmp_path: Path) -> None:
    c = load(tmp_path)
    with pytest.raises(KeyError, match="unknown configuration key 'sampling.rate'; did you mean sampling.ratio"):
        c.provenance("sampling.rate")


def test_config_is_frozen(tmp_path: Path) -> None:
    c = load(tmp_path)
    with pytest.raises(AttributeError):
        c.sampling.ratio = 0.5  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.service.resource_attributes["x"] = "y"  # type: ignore[index]


def test_changed_keys(tmp_path: Path) -> None:
    a = load(tmp_path)
    b = load(tmp_path, {"ATS_SAMPLING_RATIO": "0.5", "ATS_TENANT": "x", "ATS_DISABLED_PLUGINS": "sqlite3"})
    assert b.changed_keys(a) == {"sampling.ratio", "tenant", "plugins.disabled"}
    assert b.changed_keys(a) - reloadable_keys() == {"plugins.disabled"}


def test_reloadable_keys() -> None:
    assert set(keys()) - reloadable_keys() == {
        "disabled", "plugins.disabled", "plugins.allowed", "plugins.trace_hooks"}


def test_pipeline_kwargs_build_a_real_pipeline(tmp_path: Path) -> None:
    from ats._native import Pipeline

    c = load(tmp_path, {"ATS_JSONL_ENABLED": "true", "ATS_TAIL_ENABLED": "true", "ATS_TENANT": "acme",
                        "ATS_SAMPLING_RULES": "driver.:0.5", "ATS_SAMPLING_DAILY_CAP": "10",
                        "ATS_REDACTION_PATTERNS": '[{"name": "e", "regex": "E-\\\\d+", "marker": "[E]"}]'})
    kw = c.pipeline_kwargs()
    assert kw.pop("otlp") is None  # the runtime passes ``otlp`` only when an exporter is configured
    assert kw["store_path"] == str(tmp_path.resolve() / ".ats" / "ats.db")
    assert kw["jsonl_dir"] == str(tmp_path.resolve() / ".ats" / "jsonl")
    assert (kw["tail_latency_ms"], kw["sampling_rules"], kw["daily_cap"]) == (1000.0, [("driver.", 0.5, 1.0)], 10)
    (tmp_path / ".ats" / "jsonl").mkdir(parents=True)
    p = Pipeline(**kw)
    assert p.shutdown(5.0) is True
    assert load(tmp_path, {"ATS_STORE_ENABLED": "no"}).pipeline_kwargs()["store_path"] is None


def test_import_is_cheap() -> None:
    code = ("import sys, ats.config, threading; assert threading.active_count() == 1; "
            "print(sorted(m for m in ('tomllib', 'tomli', 'yaml', 'difflib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ATS_ROOT})
    assert out.stdout.strip() == "[]"


def test_import_ats_starts_no_thread_and_opens_no_socket_or_file_for_writing() -> None:
    # Audit events see every socket, thread and child process Python code asks for; the task
    # list of the process also sees native threads (the flusher starts only with ats.init()).
    code = (
        "import os, sys\n"
        "seen = []\n"
        "watched = ('socket.', '_thread.start_new_thread', 'subprocess.Popen', 'os.fork', 'os.posix_spawn',"
        " 'os.system', 'os.exec')\n"
        "def writes(args):\n"
        "    mode, flags = args[1], args[2]\n"
        "    return any(c in mode for c in 'wax+') if isinstance(mode, str) else bool(\n"
        "        flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))\n"
        "def hook(event, args):\n"
        "    if event.startswith(watched) or (event == 'open' and writes(args)):\n"
        "        seen.append(event if event != 'open' else f'open {args[0]}')\n"
        "sys.addaudithook(hook)\n"
        "import ats\n"
        "print(len(os.listdir('/proc/self/task')), sorted(set(seen)), ats._runtime.current())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ATS_ROOT, "PYTHONDONTWRITEBYTECODE": "1"})  # .pyc writes are Python's own
    assert out.stdout.strip() == "1 [] None"


# --- robustness -------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ats.config import RESERVED_ENV  # noqa: E402
from ats.config._keys import BY_ENV  # noqa: E402

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(env=st.dictionaries(st.sampled_from(sorted([*BY_ENV, *RESERVED_ENV, "OTEL_SERVICE_NAME",
                                                   "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
                                                   "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED"])),
                           st.text(max_size=30).filter(lambda s: "\x00" not in s), max_size=6),
       overrides=st.dictionaries(st.sampled_from(keys()), _JSONISH, max_size=4))
def test_any_input_gives_a_config_or_one_config_error(env: dict[str, str], overrides: dict[str, Any]) -> None:
    env.pop("ATS_CONFIG", None)  # a random path is tested elsewhere
    try:
        c = load_config(environ=env, overrides=overrides, cwd=Path("/nonexistent-ats-cwd"))
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("ats config: ")
    else:
        assert len(c.as_rows()) == len(keys())


def test_config_records_behave_like_frozen_dataclasses() -> None:
    from ats.config._model import FlushConfig, SamplingRule
    from ats.config._record import FrozenInstanceError, fields

    a = FlushConfig(200, 4096, handoff_max_records=10)
    assert a == FlushConfig(interval_ms=200, batch_max_records=4096, handoff_max_records=10) != FlushConfig(1, 2, 3)
    assert hash(a) == hash(FlushConfig(200, 4096, 10)) and a != (200, 4096, 10)
    assert repr(a) == "FlushConfig(interval_ms=200, batch_max_records=4096, handoff_max_records=10)"
    assert [f.name for f in fields(a)] == ["interval_ms", "batch_max_records", "handoff_max_records"]
    with pytest.raises(FrozenInstanceError):
        a.interval_ms = 1  # type: ignore[misc]
    with pytest.raises(TypeError, match="missing required argument 'handoff_max_records'"):
        FlushConfig(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        FlushConfig(1, 2, 3, nope=4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        FlushConfig(1, 2, 3, interval_ms=4)  # type: ignore[misc]
    assert SamplingRule("db.", 0.5) == SamplingRule(prefix="db.", ok_rate=0.5, error_rate=1.0)  # the default
