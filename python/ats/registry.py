"""Event families (seed 002): who may emit which events, how sensitive they are, where they may go.

Each :class:`EventFamily` declares its event names, a JSON Schema for the attributes of its
spans and log records, a sensitivity class, a transmission class, a retention class and an
owner. The :class:`Registry` answers "which family does this event belong to?" for the
runtime (an unregistered event is rejected and counted), ``ats validate`` and ``ats trace
stats``. Plugins add families through the ``ats_register_event_families(registry)`` hook.

Classes (seed 002, normative definitions):

==========================  ================================================================
sensitivity                 ``S0`` coarse, ``S1`` operational, ``S2`` workspace-adjacent,
                            ``S3`` content-bearing
transmission                ``local_only`` (never leaves the machine unless the user copies
                            it), ``explicit_operator_export`` (leaves only through an operator
                            action: ``ats trace export`` or a configured ``export.endpoint``),
                            ``approved_usage_upload`` (reserved for a future central sink)
retention                   ``<days>d`` (``30d``, ``90d``, ``400d``; 0 to 3650 days)
==========================  ================================================================

Rules enforced on every family, because seed 002 forbids content in anything that may be
uploaded: an ``S3`` family must be ``local_only``, and ``approved_usage_upload`` is only for
``S0``/``S1`` families.

Event names are dot-scoped and written without the status suffix the sinks append
(``driver.query``, stored as ``driver.query.ok`` / ``driver.query.error``). :meth:`Registry.lookup`
accepts either form, and any name under a registered family (``driver.pool.wait`` belongs to
``driver``): a family owns its namespace.

The built-in families, and why each has its classes (see :data:`BUILTIN_FAMILIES`):

- Seed 000 taxonomy (kernel, sched, air, udr, driver, policy, cache, ddl, sec): these are the
  trace events seed 000 §9 sends to an OpenTelemetry collector, so they are
  ``explicit_operator_export`` (they leave only when the operator configures an export).
  Retention ``30d`` (seed 000 §8.4, traces/logs). ``kernel``, ``sched`` and ``cache`` carry
  timings and classes only: ``S1``. ``air``, ``udr``, ``driver``, ``ddl`` carry normalised
  statements, table names and plan hashes (never literals: seed 000 §8.2), and ``policy``/``sec``
  carry pseudonymous actors and reasons: workspace-adjacent, ``S2``.
- Seed 003 agent platform: ``agent``, ``swarm``, ``mesh`` are resource figures and topology
  counts (``S1``); ``memory.bridge``, ``task`` and ``bridge`` name namespaces, tasks, agents and
  message endpoints (``S2``; error messages are scrubbed before they are stored). ``consensus``
  (a vote's ``reasoning``) and ``security`` (``violation_details``, ``attempted_action``) carry
  free text written by agents, so they are ``S3`` and therefore ``local_only``. Retention per
  seed 003: security and consensus ``90d`` (high priority), agent lifecycle ``7d`` (high
  frequency), bridge messages ``7d`` (routine, sampled at 0.1 %), the rest ``30d``.
- Seed 004 hook points: ``session`` (workspace context, ``S2``) and ``tool`` (tool names and
  arguments, which seed 002 lists as content, ``S3``): ``local_only``, retention ``30d``
  (seed 004 §4.2 default). Inside a session, ``decision`` and ``error`` spans (seed 004 §2.3
  span types; the agent's choices and failures, workspace-adjacent ``S2``, ``local_only`` like
  the session). ``attribution`` (seed 004 §1.2, Agent Trace): changed line ranges of files with
  content hashes, never the text (``S2``), ``explicit_operator_export`` because leaving through
  ``ats trace export --format agent-trace`` is their purpose.

No built-in family is ``approved_usage_upload``: seed 002 reserves it for a future sink that
needs its own policy document.

Attribute schemas type the known attributes and allow others (``additionalProperties``):
spans grow attributes additively (seed 000 §10) and the envelope schema already restricts values
to scalars. Nested seed fields are flattened with dots (``resource_usage.cpu_percent``).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, get_args

__all__ = [
    "BUILTIN_FAMILIES",
    "DuplicateFamilyError",
    "EventFamily",
    "GENAI_FAMILY",
    "InvalidFamilyError",
    "LineError",
    "Registry",
    "Sensitivity",
    "STATUS_SUFFIXES",
    "Transmission",
    "ValidationReport",
    "default_registry",
    "validate_file",
]

Sensitivity = Literal["S0", "S1", "S2", "S3"]
Transmission = Literal["local_only", "explicit_operator_export", "approved_usage_upload"]

SENSITIVITIES: Final = frozenset(get_args(Sensitivity))
TRANSMISSIONS: Final = frozenset(get_args(Transmission))

#: The family of the agent framework plugins' spans (:mod:`ats.genai`).
GENAI_FAMILY: Final = "gen_ai"

#: Suffixes a span's status adds to its name (seed 000 §3: ``.start|.ok|.error``).
STATUS_SUFFIXES: Final = (".ok", ".error", ".start")

_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_RETENTION = re.compile(r"([0-9]{1,4})d")
_MAX_RETENTION_DAYS = 3650
_CACHE_MAX = 4096


class InvalidFamilyError(ValueError):
    """An event family whose fields break the rules above."""


class DuplicateFamilyError(ValueError):
    """A family name or event name that is already registered."""


@dataclass(frozen=True)
class EventFamily:
    """One event family (seed 002 "event family model").

    :param family: stable dotted name (``driver``, ``memory.bridge``); owns every event under it.
    :param events: the event names it emits, without status suffix (``driver.query``).
    :param schema: JSON Schema (the subset of :mod:`ats.schemas`) of the attributes object.
    :param sensitivity: ``S0`` .. ``S3``.
    :param transmission: ``local_only``, ``explicit_operator_export`` or ``approved_usage_upload``.
    :param retention: retention class, ``<days>d``.
    :param owner: who owns the writes (team, component or plugin distribution).
    :param description: one line for humans.

    Raises :class:`InvalidFamilyError` when a field is invalid.
    """

    family: str
    events: tuple[str, ...]
    schema: Mapping[str, Any]
    sensitivity: Sensitivity
    transmission: Transmission
    retention: str
    owner: str
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        from ats.schemas import SchemaError, check_schema

        if not isinstance(self.events, tuple):
            # Accept any iterable of names (a list is the natural literal) but store a tuple.
            if isinstance(self.events, str) or not isinstance(self.events, Iterable):
                raise self._invalid(f"events must be a list of event names, got {self.events!r}")
            object.__setattr__(self, "events", tuple(self.events))
        if not isinstance(self.family, str) or not _NAME.fullmatch(self.family):
            raise InvalidFamilyError(
                f"event family name {self.family!r} is invalid: use lower-case dotted words "
                "like 'driver' or 'memory.bridge'"
            )
        if not self.events:
            raise self._invalid("declares no events")
        for event in self.events:
            if not isinstance(event, str) or not _NAME.fullmatch(event):
                raise self._invalid(f"event name {event!r} is invalid: use lower-case dotted words")
            # A family may also name one event after itself: seed 004's ``decision`` and ``error``.
            if event != self.family and not event.startswith(self.family + "."):
                raise self._invalid(f"event {event!r} is not under the family name ({self.family}.<name>)")
            if event.endswith((".ok", ".error")):
                raise self._invalid(
                    f"event {event!r} ends with a status suffix; declare {event.rsplit('.', 1)[0]!r} "
                    "(the sinks append .ok/.error)"
                )
        if len(set(self.events)) != len(self.events):
            raise self._invalid("lists an event twice")
        if self.sensitivity not in SENSITIVITIES:
            raise self._invalid(f"sensitivity {self.sensitivity!r} is not one of S0, S1, S2, S3")
        if self.transmission not in TRANSMISSIONS:
            raise self._invalid(
                f"transmission {self.transmission!r} is not one of "
                "local_only, explicit_operator_export, approved_usage_upload"
            )
        if self.sensitivity == "S3" and self.transmission != "local_only":
            raise self._invalid(
                f"is S3 (content-bearing) so its transmission must be local_only, not {self.transmission}"
            )
        if self.transmission == "approved_usage_upload" and self.sensitivity not in ("S0", "S1"):
            raise self._invalid(
                f"is {self.sensitivity}; approved_usage_upload is only allowed for S0 and S1 families"
            )
        m = _RETENTION.fullmatch(self.retention) if isinstance(self.retention, str) else None
        if m is None or int(m.group(1)) > _MAX_RETENTION_DAYS:
            raise self._invalid(
                f"retention {self.retention!r} is not a retention class like '30d' (0d to {_MAX_RETENTION_DAYS}d)"
            )
        if not isinstance(self.owner, str) or not self.owner.strip():
            raise self._invalid("has no owner")
        if not isinstance(self.schema, Mapping) or self.schema.get("type") != "object":
            raise self._invalid('schema must be a JSON Schema object with "type": "object"')
        try:
            check_schema(self.schema)
        except SchemaError as e:
            raise self._invalid(f"schema is not supported: {e}") from None

    @property
    def retention_days(self) -> int:
        """The retention class in days (``"30d"`` -> 30)."""
        return int(self.retention[:-1])

    def validate_attributes(self, attributes: Any) -> list[str]:
        """Violations of :attr:`schema` by an attributes object (empty when valid)."""
        from ats.schemas import validate

        return validate(attributes, self.schema)

    def _invalid(self, message: str) -> InvalidFamilyError:
        return InvalidFamilyError(f"event family {self.family!r} {message}")


class _HostLike(Protocol):
    def register_event_families(self, registry: Any) -> None: ...


class Registry:
    """The event families in force. Thread-safe; lookups take no lock."""

    def __init__(self, families: Iterable[EventFamily] = ()) -> None:
        self._lock = threading.Lock()
        # Replaced (copy-on-write) under the lock so readers never see a half-registered family.
        self._families: dict[str, EventFamily] = {}
        self._events: dict[str, EventFamily] = {}
        self._rejected: dict[str, int] = {}
        # name -> lookup result; a hit is one dict probe instead of suffix and prefix walks.
        # Bounded: event names can be user-made and unbounded in number.
        self._cache: dict[str, EventFamily | None] = {}
        for f in families:
            self.register(f)

    def register(self, family: EventFamily) -> None:
        """Add a family. Raises :class:`DuplicateFamilyError` (a ``ValueError``) when its name or
        one of its events is taken, :class:`TypeError` for anything but an :class:`EventFamily`."""
        if not isinstance(family, EventFamily):
            raise TypeError(f"register() takes an ats.registry.EventFamily, got {type(family).__name__}")
        with self._lock:
            existing = self._families.get(family.family)
            if existing is not None:
                raise DuplicateFamilyError(
                    f"event family {family.family!r} is already registered (owner: {existing.owner})"
                )
            for event in family.events:
                other = self._events.get(event)
                if other is not None:
                    raise DuplicateFamilyError(
                        f"event {event!r} of family {family.family!r} is already declared by "
                        f"family {other.family!r} (owner: {other.owner})"
                    )
            families = dict(self._families)
            families[family.family] = family
            events = dict(self._events)
            events.update((e, family) for e in family.events)
            self._families, self._events = families, events
            self._cache = {}

    def lookup(self, event_name: str) -> EventFamily | None:
        """The family of an event: an exact event name, the name without its status suffix
        (``.ok``/``.error``/``.start``), else the longest registered family that is a dotted
        prefix of the name. ``None`` when no family owns it."""
        cache = self._cache
        try:
            return cache[event_name]
        except KeyError:
            pass
        found = self._lookup(event_name)
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[event_name] = found
        return found

    def _lookup(self, event_name: str) -> EventFamily | None:
        events = self._events
        found = events.get(event_name)
        if found is not None:
            return found
        name = event_name
        for suffix in STATUS_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                found = events.get(name)
                if found is not None:
                    return found
                break
        op, space, _target = name.partition(" ")
        if space or "." not in name:
            # OpenTelemetry GenAI span names are ``{gen_ai.operation.name} {target}``
            # (``execute_tool get_weather``), or the operation alone without a target (``chat``).
            found = events.get(f"{GENAI_FAMILY}.{op}")
            if found is not None or space:
                return found
        families = self._families
        while True:
            found = families.get(name)
            if found is not None:
                return found
            cut = name.rfind(".")
            if cut <= 0:
                return None
            name = name[:cut]

    def is_registered(self, name: str) -> bool:
        """True when some family owns ``name`` (see :meth:`lookup`)."""
        return self.lookup(name) is not None

    def accept(self, name: str) -> bool:
        """:meth:`is_registered`, counting a rejection under ``name`` when it is not."""
        if self.lookup(name) is not None:
            return True
        with self._lock:
            self._rejected[name] = self._rejected.get(name, 0) + 1
        return False

    def rejections(self) -> dict[str, int]:
        """Rejected event names and how often :meth:`accept` refused each."""
        with self._lock:
            return dict(self._rejected)

    def families(self) -> list[EventFamily]:
        """Every registered family, sorted by name."""
        return [self._families[k] for k in sorted(self._families)]

    def family_of(self, name: str) -> str:
        """The family name for grouping (``ats trace stats``): the registered family, else the
        part of ``name`` before its first dot."""
        found = self.lookup(name)
        return found.family if found is not None else name.split(".", 1)[0]

    def __contains__(self, family: object) -> bool:
        return family in self._families

    def __len__(self) -> int:
        return len(self._families)


def default_registry(host: _HostLike | None = None) -> Registry:
    """A registry with :data:`BUILTIN_FAMILIES`, plus the plugins' families when ``host`` (an
    ``ats.plugins.PluginHost``) is given: it calls ``ats_register_event_families(registry)``."""
    registry = Registry(BUILTIN_FAMILIES)
    if host is not None:
        host.register_event_families(registry)
    return registry


# --------------------------------------------------------------------------- JSONL validation


@dataclass(frozen=True)
class LineError:
    """One problem on one line of a JSONL file (lines count from 1)."""

    line: int
    message: str


@dataclass
class ValidationReport:
    """What :func:`validate_file` found. ``errors`` keeps the first ``max_errors`` problems;
    ``error_count`` counts them all."""

    path: str
    lines: int = 0
    valid_lines: int = 0
    error_count: int = 0
    errors: list[LineError] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    unregistered: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every line is valid."""
        return self.error_count == 0

    def format_errors(self) -> list[str]:
        """``path:line: message`` for each kept error."""
        return [f"{self.path}:{e.line}: {e.message}" for e in self.errors]


def validate_file(
    path: str | os.PathLike[str],
    registry: Registry | None = None,
    *,
    allow_unregistered: bool = False,
    max_errors: int = 1000,
) -> ValidationReport:
    """Check every line of an ATS JSONL file against the envelope schema (``ats-4.0.0.json``)
    and, for spans and logs, that a family owns the event and the attributes follow its schema.

    A span's ``evt`` must be its name plus the suffix of its ``status``, and it must not end
    before it starts. Empty lines and lines that are not one JSON object are errors (a killed
    writer leaves a partial last line: it is reported, not skipped). ``registry`` defaults to
    :func:`default_registry`. Raises ``OSError`` when the file cannot be read.
    """
    import json

    from ats.schemas import envelope_schema, validate

    reg = default_registry() if registry is None else registry
    schema = envelope_schema()
    report = ValidationReport(path=os.fspath(path))

    def fail(line: int, message: str) -> None:
        report.error_count += 1
        if len(report.errors) < max_errors:
            report.errors.append(LineError(line, message))

    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            report.lines += 1
            before = report.error_count
            text = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                record = json.loads(text.decode("utf-8"))
            except UnicodeDecodeError as e:
                fail(number, f"not UTF-8 ({e.reason} at byte {e.start})")
                continue
            except ValueError as e:
                fail(number, "empty line" if not text.strip() else f"not JSON ({e})")
                continue
            if not isinstance(record, dict):
                fail(number, f"expected a JSON object, got {type(record).__name__}")
                continue
            for message in validate(record, schema):
                fail(number, message)
            kind = record.get("kind")
            if isinstance(kind, str):
                report.kinds[kind] = report.kinds.get(kind, 0) + 1
            if report.error_count == before and kind in ("span", "log"):
                for message in _check_event(record, reg, report, allow_unregistered):
                    fail(number, message)
            if report.error_count == before:
                report.valid_lines += 1
    return report


def _check_event(
    record: Mapping[str, Any], registry: Registry, report: ValidationReport, allow_unregistered: bool
) -> list[str]:
    problems: list[str] = []
    evt: str = record["evt"]
    name = evt
    if record["kind"] == "span":
        suffix = {"ok": ".ok", "error": ".error", "unset": ""}[record["status"]]
        if suffix and not evt.endswith(suffix):
            problems.append(f"$.evt: {evt!r} does not end with {suffix!r} (status {record['status']!r})")
        elif suffix:
            name = evt[: -len(suffix)]
        if record["end_ns"] < record["start_ns"]:
            problems.append("$.end_ns: the span ends before it starts")
    family = registry.lookup(name)
    if family is None:
        report.unregistered[name] = report.unregistered.get(name, 0) + 1
        if not allow_unregistered:
            problems.append(f"$.evt: event {name!r} is not registered (no event family owns it)")
        return problems
    problems.extend(
        f"{m.replace('$', '$.attributes', 1)} (family {family.family})"
        for m in family.validate_attributes(record["attributes"])
    )
    return problems


# --------------------------------------------------------------------------- built-in families

_S: Final = {"type": "string"}
_I: Final = {"type": "integer"}
_N: Final = {"type": "number"}
_B: Final = {"type": "boolean"}
_PORT: Final = {"type": "integer", "minimum": 0, "maximum": 65535}

#: Every family: the error attributes ATS writes for a failed span (scrubbed message).
_ERRORS: Final[dict[str, Any]] = {"error.type": _S, "error.message": _S}

#: Seed 000 §4 trace attributes (OpenTelemetry mapping), shared by the seed 000 families.
_SQLX: Final[dict[str, Any]] = {
    "sqlx.tenant": _S,
    "sqlx.workspace": _S,
    "db.system": _S,
    "db.statement": _S,
    "db.operation": _S,
    "db.sqlx.air_id": {"type": "string", "pattern": "^air:Q-[0-9a-f]+$"},
    "db.sqlx.plan_hash": {"type": "string", "pattern": "^ph:[0-9a-f]+$"},
    "net.peer.name": _S,
    "net.peer.port": _PORT,
    "enduser.id": _S,
}


def _attrs(*parts: Mapping[str, Any], enums: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = dict(_ERRORS)
    for p in parts:
        props.update(p)
    for name, values in (enums or {}).items():
        props[name] = {"enum": values}
    return {"type": "object", "properties": props, "additionalProperties": True}


def _fam(
    family: str,
    events: list[str],
    sensitivity: Sensitivity,
    transmission: Transmission,
    retention: str,
    owner: str,
    description: str,
    *props: Mapping[str, Any],
    enums: Mapping[str, list[str]] | None = None,
) -> EventFamily:
    return EventFamily(family, tuple(events), _attrs(*props, enums=enums), sensitivity, transmission,
                       retention, owner, description)


_EXPORT: Final = "explicit_operator_export"
_LOCAL: Final = "local_only"

BUILTIN_FAMILIES: Final[tuple[EventFamily, ...]] = (
    # --- seed 000 §3 taxonomy --------------------------------------------------------------
    _fam("kernel", ["kernel.exec", "kernel.cancel", "kernel.retry", "kernel.timeout"],
         "S1", _EXPORT, "30d", "Kernel Team", "Kernel execution of a statement.", _SQLX,
         {"sqlx.class": {"enum": ["L", "B", "A", "S"]}, "retry.attempt": _I, "timeout_ms": _N}),
    _fam("sched", ["sched.classify", "sched.preempt", "sched.enqueue", "sched.dequeue"],
         "S1", _EXPORT, "30d", "Kernel Team", "Scheduler decisions.", _SQLX,
         {"sqlx.class": {"enum": ["L", "B", "A", "S"]}, "queue.depth": _I}),
    _fam("air", ["air.parse", "air.normalize", "air.plan", "air.hash"],
         "S2", _EXPORT, "30d", "Kernel Team", "AIR graph construction (normalised SQL, no literals).",
         _SQLX),
    _fam("udr", ["udr.compile", "udr.reverse", "udr.exec", "udr.emulation.used"],
         "S2", _EXPORT, "30d", "Kernel Team", "UDR compilation and execution.", _SQLX,
         {"baseline_cost": _N, "new_cost": _N, "regression": _B, "action": _S}),
    _fam("driver", ["driver.handshake", "driver.query", "driver.prepare", "driver.close"],
         "S2", _EXPORT, "30d", "Driver Fabric Team",
         "Database driver calls (db.statement sanitised: no parameters or literals).", _SQLX,
         {
             # OpenTelemetry stable database names, written next to the seed 000 ones.
             "db.system.name": _S, "db.query.text": _S, "db.operation.name": _S,
             "db.collection.name": _S, "db.query.summary": _S, "db.namespace": _S,
             "server.address": _S, "server.port": _PORT, "db.response.returned_rows": _I,
         }),
    _fam("policy", ["policy.evaluate", "policy.deny", "policy.obligation"],
         "S2", _EXPORT, "30d", "Security & Compliance", "Policy (π) evaluation and denials.", _SQLX,
         {"actor": _S, "reason": _S, "obligations": _S}),
    _fam("cache", ["cache.hit", "cache.miss", "cache.invalidate"],
         "S1", _EXPORT, "30d", "Kernel Team", "Plan cache (PPC) events.", _SQLX,
         {"cache.kind": _S}),
    _fam("ddl", ["ddl.migration", "ddl.migration.rollback", "ddl.lock", "ddl.online"],
         "S2", _EXPORT, "30d", "Kernel Team", "DDL and migrations.", _SQLX),
    _fam("sec", ["sec.auth", "sec.tls", "sec.key.rotate", "sec.violation"],
         "S2", _EXPORT, "30d", "Security & Compliance",
         "Authentication, TLS, key rotation, violations (pseudonymous actors).", _SQLX),
    # --- seed 003 agent platform -------------------------------------------------------------
    _fam("agent", ["agent.lifecycle"], "S1", _EXPORT, "7d", "agent",
         "Agent state transitions and resource use.",
         {"agent_id": _S, "agent_type": _S, "transition_reason": _S,
          "resource_usage.cpu_percent": _N, "resource_usage.memory_mb": _N,
          "resource_usage.network_bytes": _I},
         enums={s: ["initializing", "running", "idle", "busy", "error", "shutting_down", "offline"]
                for s in ("state_from", "state_to")}),
    _fam("swarm", ["swarm.iteration"], "S1", _EXPORT, "30d", "swarm", "Swarm optimisation progress.",
         {"swarm_id": _S, "algorithm": _S, "iteration": _I,
          "convergence_score": {"type": "number", "minimum": 0, "maximum": 1}, "best_fitness": _N}),
    _fam("consensus", ["consensus.proposal", "consensus.vote", "consensus.decision"],
         "S3", _LOCAL, "90d", "consensus",
         "Consensus proposals, votes (free-text reasoning) and decisions. consensus.vote is named "
         "after its fields: the seed's heading for it is cut off.",
         {"proposal_id": _S, "proposal_type": _S, "votes_for": _I, "votes_against": _I,
          "quorum_reached": _B, "decision_time_ms": _N, "vote": _B, "reasoning": _S,
          "vote_weight": _N, "vote_threshold": _N},
         enums={"decision": ["APPROVED", "REJECTED", "TIMEOUT"]}),
    _fam("memory.bridge", ["memory.bridge.sync"], "S2", _EXPORT, "30d", "memory_bridge",
         "Memory bridge synchronisation.",
         {"namespace": _S, "sync_strategy": _S, "conflicts_resolved": _I, "sync_duration_ms": _N,
          "status": _S}),
    _fam("mesh", ["mesh.topology.change", "mesh.topology_change"], "S1", _EXPORT, "30d", "neural_mesh",
         "Neural mesh topology changes (both spellings of seed 003).",
         {"node_id": _S, "target_node_id": _S, "change_type": _S, "connections_added": _I,
          "connections_removed": _I, "topology_health": _N, "node_count": _I, "connection_count": _I,
          "topology_hash": _S}),
    _fam("security", ["security.policy.violation", "security.violation"], "S3", _LOCAL, "90d", "security",
         "Security policy violations (free-text details).",
         {"agent_id": _S, "policy_type": _S, "violation_details": _S, "severity": _S,
          "action_taken": _S, "violation_type": _S, "source_agent": _S, "resource": _S,
          "attempted_action": _S, "policy_violated": _S, "blocked": _B}),
    _fam("task", ["task.execution", "task.assigned", "task.completed"], "S2", _EXPORT, "30d",
         "task_scheduler", "Task assignment and execution.",
         {"task_id": _S, "agent_id": _S, "task_type": _S, "duration_ms": _N, "success": _B,
          "error_type": _S, "error_message": _S, "priority": {"type": "integer", "minimum": 1, "maximum": 10},
          "estimated_duration_ms": _N, "result_size_bytes": _I}),
    _fam("bridge", ["bridge.message"], "S2", _EXPORT, "7d", "bridge", "MCP / A2A bridge messages (sizes, no payloads).",
         {"message_id": _S, "source": _S, "destination": _S, "message_type": _S,
          "payload_size_bytes": _I, "processing_time_ms": _N},
         enums={"bridge_type": ["MCP", "A2A"], "direction": ["INBOUND", "OUTBOUND"]}),
    # --- OpenTelemetry GenAI spans of the agent framework plugins (ats.genai) ----------------
    _fam(GENAI_FAMILY, ["gen_ai.invoke_agent", "gen_ai.chat", "gen_ai.text_completion", "gen_ai.execute_tool",
                        "gen_ai.step"], "S2", _EXPORT, "30d", "ats (agent frameworks)",
         "Agent, model and tool spans named '{operation} {target}' (execute_tool get_weather); prompts, "
         "completions, tool arguments and results only with genai.capture_content (scrubbed).",
         {"gen_ai.operation.name": _S, "gen_ai.provider.name": _S, "gen_ai.request.model": _S,
          "gen_ai.response.model": _S, "gen_ai.usage.input_tokens": _I, "gen_ai.usage.output_tokens": _I,
          "gen_ai.tool.name": _S, "gen_ai.tool.call.id": _S, "gen_ai.agent.name": _S, "gen_ai.agent.id": _S,
          "gen_ai.conversation.id": _S}),
    # --- seed 004 §3.1 hook points -----------------------------------------------------------
    _fam("session", ["session.start", "session.end"], "S2", _LOCAL, "30d", "ats (agent sessions)",
         "Agent session start and end (workspace context, outcome).",
         {"session.id": _S, "session.outcome": _S}),
    _fam("tool", ["tool.execute", "tool.execute.before", "tool.execute.after"], "S3", _LOCAL, "30d",
         "ats (agent tools)", "Tool calls (names, arguments, results: content).",
         {"tool.name": _S, "tool.version": _S, "tool.success": _B, "duration_ms": _N, "session.id": _S,
          "tool.argument_names": _S, "tool.arguments_size": _I}),
    # Seed 004 §2.3 span types inside a session: what the agent chose, and what went wrong.
    _fam("decision", ["decision"], "S2", _LOCAL, "30d", "ats (agent sessions)",
         "A decision an agent took inside a session (choice, reason, options).",
         {"session.id": _S, "decision.choice": _S, "decision.reason": _S, "decision.options": _S}),
    _fam("error", ["error"], "S2", _LOCAL, "30d", "ats (agent sessions)",
         "An error an agent met inside a session (type, scrubbed message, recovered or not).",
         {"session.id": _S, "error.recovered": _B}),
    # Seed 004 §1.2 goal 1: Agent Trace line attribution, one log record per changed line range.
    _fam("attribution", ["attribution.range"], "S2", _EXPORT, "30d", "ats (attribution)",
         "Changed line ranges of files written by an instrumented tool call (hashes, no text).",
         {"attribution.id": _S, "file.path": _S, "range.start_line": _I, "range.end_line": _I,
          "range.content_hash": _S, "range.line_hashes": _S, "contributor.model_id": _S,
          "vcs.type": _S, "vcs.revision": _S, "vcs.root_hash": _S, "tool.name": _S, "tool.version": _S,
          "session.id": _S, "conversation.url": _S},
         enums={"contributor.type": ["human", "ai", "mixed", "unknown"]}),
)
