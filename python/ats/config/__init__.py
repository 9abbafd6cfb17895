"""ATS configuration: one validated, frozen :class:`Config` from five layers.

Layers, lowest to highest precedence:

1. built-in defaults;
2. one config file: the ``source`` path given to :func:`load_config`
   (``ats.init(config=...)``), else the path in ``ATS_CONFIG``, else the first
   of ``ats.toml``, ``pyproject.toml`` (only if it has ``[tool.ats]``),
   ``ats.yaml``, ``ats.yml`` in the working directory. ``source`` may also be
   a mapping (provenance ``init(config)``);
3. the standard OpenTelemetry variables (table below);
4. ``ATS_*`` variables: ``ATS_`` + the key upper-cased with dots as ``_``
   (``sampling.ratio`` -> ``ATS_SAMPLING_RATIO``), except the plugin keys;
5. ``overrides`` (``ats.init(**overrides)``, provenance ``init()``): dotted
   names (``**{"sampling.ratio": 0.5}``), nested dicts (``sampling={"ratio":
   0.5}``) or the underscore form (``sampling_ratio=0.5``).

A layer replaces a key's value as a whole (``service.resource_attributes`` is
not merged across layers). An empty environment variable counts as unset.
Relative paths are anchored at the config file's directory (other layers: the
working directory).

Exceptions to the ``ATS_`` naming rule and the OpenTelemetry variables:

=============================  ===========================================
variable                       key
=============================  ===========================================
``ATS_CONFIG``                 path of the config file (not a key)
``ATS_DISABLED_PLUGINS``       ``plugins.disabled`` (comma list)
``ATS_PLUGINS``                ``plugins.allowed`` (comma list; ``all``)
``ATS_TRACE_HOOKS``            ``plugins.trace_hooks``
``ATS__*``                     reserved for ATS's own process plumbing
``OTEL_SERVICE_NAME``          ``service.name``
``OTEL_RESOURCE_ATTRIBUTES``   ``service.resource_attributes`` (``k=v,...``
                               percent-decoded); its ``service.name``,
                               ``ats.tenant``/``sqlx.tenant``,
                               ``ats.workspace``/``sqlx.workspace`` and
                               ``ats.region``/``sqlx.region``/``cloud.region``
                               also set ``service.name``, ``tenant``,
                               ``workspace``, ``region`` when those are not
                               set in the same layer (first name wins)
``OTEL_TRACES_SAMPLER``        ``sampling.ratio`` + ``sampling.parent_based``
                               (always_on, always_off, traceidratio,
                               parentbased_always_on, parentbased_always_off,
                               parentbased_traceidratio)
``OTEL_TRACES_SAMPLER_ARG``    ``sampling.ratio`` for the two ratio samplers
                               (ignored otherwise; default 1.0)
``OTEL_SDK_DISABLED``          ``disabled``
=============================  ===========================================

Any other ``ATS_*`` variable is an error (with the closest valid name).

YAML files may also use the seed shapes: seed 004 §5 ``telemetry:``
(``enabled`` -> ``not disabled``, ``sampling.rate`` percent -> ``sampling.ratio``,
``retention.days`` -> ``retention.traces_days``, ``privacy.scrub_pii`` and
seed 000 §4 ``debugRedact`` -> ``redaction.enabled``, ``export.enabled`` /
``export.endpoint``) and seed 001 §13 ``observability:`` (``otel.endpoint`` ->
``export.endpoint`` and ``export.enabled``, ``otel.serviceName``,
``otel.sampling``, ``retention.traces|logs|metrics`` like ``30d``; ``slo`` and
``alerts`` are accepted and not used by the agent).

Validation: a bad key or value raises :class:`ConfigError` naming the key, the
value, what is allowed and the source. ``redaction.enabled = false`` is only
allowed with ``mode = "dev"`` (seed 000 §4: ``telemetry.debugRedact=false`` is
dev-only). Booleans accept true/false/1/0/yes/no/on/off; byte sizes an
integer or ``64MiB``/``10MB``/``512KiB``; day counts an integer or ``30d``.

Importing this package is cheap: TOML, YAML, difflib and the native scrubber
are imported only when needed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ats.config._keys import KEYS, RESERVED_ENV, reloadable_keys
from ats.config._model import (
    Config,
    ExportConfig,
    FlushConfig,
    GenaiConfig,
    JsonlConfig,
    CapabilitiesConfig,
    MetricsConfig,
    PlansConfig,
    PluginsConfig,
    RedactionConfig,
    RedactionPattern,
    ResourcesConfig,
    RetentionConfig,
    RingConfig,
    SamplingConfig,
    SamplingRule,
    SloConfig,
    SloRule,
    SqlcommenterConfig,
    ServiceConfig,
    ShutdownConfig,
    StoreConfig,
    TailConfig,
)
from ats.config._values import ConfigError

__all__ = [
    "Config",
    "ConfigError",
    "ExportConfig",
    "FlushConfig",
    "GenaiConfig",
    "JsonlConfig",
    "MetricsConfig",
    "PlansConfig",
    "CapabilitiesConfig",
    "PluginsConfig",
    "RedactionConfig",
    "RedactionPattern",
    "ResourcesConfig",
    "RetentionConfig",
    "RingConfig",
    "SamplingConfig",
    "SamplingRule",
    "SloConfig",
    "SloRule",
    "SqlcommenterConfig",
    "ServiceConfig",
    "ShutdownConfig",
    "StoreConfig",
    "TailConfig",
    "env_var",
    "keys",
    "load_config",
    "reloadable_keys",
    "RESERVED_ENV",
]


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Reads, merges and validates every layer; raises :class:`ConfigError`.

    ``environ`` defaults to ``os.environ`` and ``cwd`` to the working directory.
    """
    from ats.config._model import build
    from ats.config._sources import Layer, ats_layer, find_file, mapping_layer, otel_layer, read_file

    env: Mapping[str, str] = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else Path(cwd).resolve()
    layers: list[Layer] = []
    if isinstance(source, Mapping):
        layers.append(mapping_layer(source, "init(config)", base))
    else:
        found = find_file(source, env, base)
        if found is not None:
            layers.append(read_file(found[0]))
    layers.append(otel_layer(env, base))
    layers.append(ats_layer(env, base))
    if overrides:
        layers.append(mapping_layer(overrides, "init()", base))
    merged: Layer = {}
    for layer in layers:
        merged.update(layer)
    return build(merged, base)


def keys() -> list[str]:
    """Every configuration key, sorted."""
    return sorted(KEYS)


def env_var(key: str) -> str:
    """The ``ATS_*`` variable of a key (``sampling.ratio`` -> ``ATS_SAMPLING_RATIO``)."""
    return KEYS[key].env
