"""Where raw values come from: files, ``OTEL_*`` and ``ATS_*`` variables, ``init()``.

Each function returns one *layer*: dotted key -> :class:`Raw`. Unknown keys
are rejected here (with the closest valid name); values are validated later,
once all layers are merged, so only the value that wins is judged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ats.config._keys import BY_ENV, KEYS, OTLP_SETTINGS, RESERVED_ENV, SECTIONS, SIGNALS
from ats.config._values import ConfigError, Invalid, Raw, parse_bool, resource_attributes

Layer = dict[str, Raw]

_FILE_ALLOWED = "an existing .toml, pyproject.toml, .yaml or .yml file"
_UNDERSCORED = {k.replace(".", "_"): k for k in KEYS if "." in k}

# Resource attributes that also set a key when the same layer does not set it.
_FROM_RESOURCE = {
    "service.name": ("service.name",),
    "tenant": ("ats.tenant", "sqlx.tenant"),
    "workspace": ("ats.workspace", "sqlx.workspace"),
    "region": ("ats.region", "sqlx.region", "cloud.region"),
}

_OTEL_SAMPLERS = {
    # name: (ratio, or None to read OTEL_TRACES_SAMPLER_ARG; parent_based)
    "always_on": (1.0, False),
    "always_off": (0.0, False),
    "traceidratio": (None, False),
    "parentbased_always_on": (1.0, True),
    "parentbased_always_off": (0.0, True),
    "parentbased_traceidratio": (None, True),
}


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    import difflib

    candidates = list(candidates)
    # Same words in another order (ATS_PLUGINS_DISABLED -> ATS_DISABLED_PLUGINS).
    words = sorted(name.lower().replace(".", "_").split("_"))
    for c in candidates:
        if sorted(c.lower().replace(".", "_").split("_")) == words:
            return c
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown(key: str, value: object, source: str) -> ConfigError:
    return ConfigError(key, value, "a key from the configuration reference", source,
                       unknown=True, suggestion=suggest(key, KEYS))


def flatten(data: Mapping[Any, Any], source: str, base: Path, *, prefix: str = "",
            aliases: bool = False) -> Layer:
    """Nested tables and dotted names both become dotted keys.

    With ``aliases``, ``sampling_ratio`` also means ``sampling.ratio`` (so that
    ``ats.init(sampling_ratio=0.5)`` works).
    """
    out: Layer = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if aliases and not prefix and key in _UNDERSCORED:
            key = _UNDERSCORED[key]
        if key in KEYS:
            out[key] = Raw(value, source, base)
        elif isinstance(value, Mapping) and (key in SECTIONS or "." in key and key.split(".")[0] in SECTIONS):
            out.update(flatten(value, source, base, prefix=f"{key}.", aliases=False))
        elif key in SECTIONS:
            raise ConfigError(key, value, f"a table of {key}.* keys", source)
        else:
            raise _unknown(key, value, source)
    return out


def derive_from_resource(layer: Layer) -> Layer:
    raw = layer.get("service.resource_attributes")
    if raw is None:
        return layer
    try:
        attrs = resource_attributes(raw.value, raw.base)
    except Invalid:
        return layer  # reported when the winning value is validated
    for key, names in _FROM_RESOURCE.items():
        if key in layer:
            continue
        for name in names:
            if attrs.get(name):
                layer[key] = Raw(attrs[name], raw.source, raw.base)
                break
    return layer


# --- files -------------------------------------------------------------------

def find_file(source: str | os.PathLike[str] | None, environ: Mapping[str, str],
              cwd: Path) -> tuple[Path, str] | None:
    """The file to read and how it was chosen (for errors), or ``None``."""
    if source is not None:
        chosen, how = Path(source), "init(config=...)"
    elif environ.get("ATS_CONFIG"):
        chosen, how = Path(environ["ATS_CONFIG"]), "env ATS_CONFIG"
    else:
        for name in ("ats.toml", "pyproject.toml", "ats.yaml", "ats.yml"):
            p = cwd / name
            if p.is_file() and (name != "pyproject.toml" or _has_tool_ats(p)):
                return p.resolve(), f"file {p.resolve()}"
        return None
    try:
        chosen = (cwd / chosen.expanduser()).resolve()
    except RuntimeError:  # `~name` of a user that does not exist
        raise ConfigError("config", str(chosen), _FILE_ALLOWED, how) from None
    if not chosen.is_file() or not chosen.name.endswith((".toml", ".yaml", ".yml")):
        raise ConfigError("config", str(chosen), _FILE_ALLOWED, how)
    return chosen, how


def _has_tool_ats(p: Path) -> bool:
    # Cheap text check first: most pyproject.toml files have no [tool.ats].
    try:
        return "tool.ats" in p.read_text(encoding="utf-8") and "ats" in _read_toml(p).get("tool", {})
    except (OSError, ConfigError, UnicodeDecodeError):
        return True  # let read_file report the problem


def _read_toml(p: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        try:
            import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ConfigError("config", str(p), "tomli installed to read TOML on Python 3.10 "
                              "(pip install tomli)", f"file {p}") from None
    try:
        with p.open("rb") as f:
            data: dict[str, Any] = tomllib.load(f)
            return data
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("config", str(p), f"valid TOML ({e})", f"file {p}") from None


def _read_yaml(p: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError("config", str(p), "PyYAML installed to read YAML (pip install pyyaml), "
                          "or a .toml file", f"file {p}") from None
    try:
        with p.open("rb") as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError("config", str(p), f"valid YAML ({' '.join(str(e).split())})", f"file {p}") from None


def read_file(p: Path) -> Layer:
    source = f"file {p}"
    if p.name.endswith(".toml"):
        data: Any = _read_toml(p)
        if p.name == "pyproject.toml":
            data = data.get("tool", {}).get("ats", {})
    else:
        data = _read_yaml(p) or {}
    if not isinstance(data, Mapping):
        raise ConfigError("config", str(p), "a table of settings at the top level", source)
    data = dict(data)
    seed: Layer = {}
    for top in ("telemetry", "observability"):
        if isinstance(data.get(top), Mapping) and top not in SECTIONS:
            seed.update(_seed_shape(top, data.pop(top), source, p.parent))
    layer = flatten(data, source, p.parent)
    return derive_from_resource({**seed, **layer})


# --- the seed-shaped YAML (seed 004 §5, seed 001 §13, seed 000 §4) -------------

def _percent(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid("a percentage between 0 and 100")
    try:
        f = float(value)
    except ValueError:
        raise Invalid("a percentage between 0 and 100") from None
    if not 0.0 <= f <= 100.0:
        raise Invalid("a percentage between 0 and 100")
    return f / 100.0


def _negate(value: object) -> object:
    return not parse_bool(value, Path())


def _same(value: object) -> object:
    return value


Mapper = tuple[str, Callable[[object], object]]
_SEED: dict[str, list[Mapper] | None] = {
    # seed 004 §5
    "telemetry.enabled": [("disabled", _negate)],
    "telemetry.sampling.rate": [("sampling.ratio", _percent)],
    "telemetry.retention.days": [("retention.traces_days", _same)],
    "telemetry.privacy.scrub_pii": [("redaction.enabled", _same)],
    "telemetry.export.enabled": [("export.enabled", _same)],
    "telemetry.export.endpoint": [("export.endpoint", _same)],
    # seed 000 §4: parameters stay in db.statement only with debugRedact=false (dev mode)
    "telemetry.debugRedact": [("redaction.enabled", _same)],
    # seed 001 §13
    "observability.otel.endpoint": [("export.endpoint", _same), ("export.enabled", bool)],
    "observability.otel.serviceName": [("service.name", _same)],
    "observability.otel.sampling": [("sampling.ratio", _same)],
    "observability.retention.traces": [("retention.traces_days", _same)],
    "observability.retention.logs": [("retention.logs_days", _same)],
    "observability.retention.metrics": [("retention.metrics_days", _same)],
    # SLO and alerting settings belong to other components; accepted, not used here.
    "observability.slo": None,
    "observability.alerts": None,
}


def _seed_shape(top: str, data: Mapping[Any, Any], source: str, base: Path) -> Layer:
    out: Layer = {}

    def walk(prefix: str, node: Mapping[Any, Any]) -> None:
        for name, value in node.items():
            label = f"{prefix}.{name}"
            if label in _SEED:
                for key, convert in _SEED[label] or ():
                    try:
                        out[key] = Raw(convert(value), source, base, label)
                    except Invalid as e:
                        raise ConfigError(label, value, e.allowed or KEYS[key].allowed, source) from None
            elif isinstance(value, Mapping) and any(s.startswith(label + ".") for s in _SEED):
                walk(label, value)
            else:
                raise ConfigError(label, value, "a key of the documented seed shape", source,
                                  unknown=True, suggestion=suggest(label, _SEED))

    walk(top, data)
    return out


# --- environment and init() ----------------------------------------------------

def otel_layer(environ: Mapping[str, str], cwd: Path) -> Layer:
    """The standard OpenTelemetry variables (below ``ATS_*`` in precedence)."""
    out: Layer = {}

    def put(key: str, var: str, value: object) -> None:
        out[key] = Raw(value, f"env {var}", cwd)

    def get(var: str) -> str | None:
        value = environ.get(var, "").strip()
        return value or None  # OTel: an empty variable is an unset one

    if (attrs := get("OTEL_RESOURCE_ATTRIBUTES")) is not None:
        put("service.resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", attrs)
        derive_from_resource(out)
    if (name := get("OTEL_SERVICE_NAME")) is not None:
        put("service.name", "OTEL_SERVICE_NAME", name)
    if (sampler := get("OTEL_TRACES_SAMPLER")) is not None:
        choice = _OTEL_SAMPLERS.get(sampler.lower())
        if choice is None:
            raise ConfigError("sampling.ratio", sampler, "one of " + ", ".join(_OTEL_SAMPLERS),
                              "env OTEL_TRACES_SAMPLER")
        ratio, parent_based = choice
        put("sampling.parent_based", "OTEL_TRACES_SAMPLER", parent_based)
        if ratio is not None:
            put("sampling.ratio", "OTEL_TRACES_SAMPLER", ratio)
        elif (arg := get("OTEL_TRACES_SAMPLER_ARG")) is not None:
            put("sampling.ratio", "OTEL_TRACES_SAMPLER_ARG", arg)
        else:
            put("sampling.ratio", "OTEL_TRACES_SAMPLER", 1.0)  # the spec's default argument
    if (disabled := get("OTEL_SDK_DISABLED")) is not None:
        put("disabled", "OTEL_SDK_DISABLED", disabled)
    for var, key in _OTEL_OTLP_VARS.items():
        if (value := get(var)) is not None:
            put(key, var, value)
    return out


def _otel_otlp_vars() -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP[_SIGNAL]_*``, ``OTEL_<SIGNAL>_EXPORTER`` and the temporality
    preference -> their ``otlp.*`` keys."""
    out = {}
    for setting in OTLP_SETTINGS:
        suffix = setting.removesuffix("_ms").upper()
        out[f"OTEL_EXPORTER_OTLP_{suffix}"] = f"otlp.{setting}"
        for signal in SIGNALS:
            out[f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"] = f"otlp.{signal}_{setting}"
    for signal in SIGNALS:
        out[f"OTEL_{signal.upper()}_EXPORTER"] = f"otlp.{signal}_exporter"
    out["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] = "otlp.metrics_temporality"
    return out


_OTEL_OTLP_VARS = _otel_otlp_vars()


def ats_layer(environ: Mapping[str, str], cwd: Path) -> Layer:
    out: Layer = {}
    for var, value in environ.items():
        if not var.startswith("ATS_") or var in RESERVED_ENV or var.startswith("ATS__"):
            continue
        key = BY_ENV.get(var)
        if key is None:
            raise ConfigError(var, value, "a documented ATS_* variable", f"env {var}",
                              unknown=True, suggestion=suggest(var, [*BY_ENV, *RESERVED_ENV]))
        if value.strip():
            out[key.name] = Raw(value, f"env {var}", cwd)
    return derive_from_resource(out)


def mapping_layer(data: Mapping[str, Any], source: str, cwd: Path) -> Layer:
    return derive_from_resource(flatten(data, source, cwd, aliases=True))
