"""Execution plans of slow reads: captured off the app thread, redacted, fingerprinted, compared.

Opt-in (``plans.enabled``).  When a driver plugin records a statement that

* took at least ``plans.latency_ms``,
* runs on PostgreSQL or MySQL/MariaDB,
* is a read: a single ``SELECT`` / ``WITH ... SELECT`` without ``INTO``, locking clauses or
  any data-modifying word (:func:`is_plain_read`), and
* whose ``air_id`` was not explained in the last ``plans.interval_s`` seconds,

a job goes to the side worker (:mod:`ats.side`: bounded queue, drops counted).  The job opens a
new connection with the program connection's parameters and runs ``EXPLAIN (FORMAT JSON)`` /
``EXPLAIN FORMAT=JSON`` (never ``ANALYZE``: the statement is planned, not executed) with the
statement's own parameters, inside a ``READ ONLY`` transaction that is rolled back.
PostgreSQL 16+ gets ``GENERIC_PLAN`` instead of values when the statement text uses ``$n``
placeholders (asyncpg); ``%s`` placeholders (psycopg, psycopg2) are explained with the values.
A statement on a temporary table cannot be explained on another connection (counted failure).

The plan is redacted (every string in it goes through the native SQL normaliser, so no literal
survives, then the PII scrubber), fingerprinted natively (``plan_fingerprint`` of the redacted
plan: the same plan with other values has the same ``ph:`` hash) and recorded as log records
(the store keeps them in ``logs``; no separate table, so every sink and OTLP carry them too):

``air.plan.ok`` (seed 000 §3 ``air.plan``), one per captured plan, linked to the slow
statement's span by ``trace_id``/``span_id``, with ``air_id`` and ``plan_hash`` in the
envelope; attributes ``db.sqlx.plan_hash``, ``db.sqlx.plan_cost`` (PostgreSQL: the top node's
``Total Cost``; MySQL: ``query_cost``; MariaDB, which reports no cost: the product of the
estimated rows of the joined tables) and ``db.sqlx.plan_new`` (true the first time this process
sees the hash).  The body is the redacted plan JSON the first time a hash is seen in the
process, empty afterwards: each distinct plan is kept once per process.

``udr.compile.ok`` (seed 000 §6), when the plan of an ``air_id`` changes to one that costs more
than its baseline (the cheapest plan seen for it): attributes ``baseline_cost``, ``new_cost``,
``regression`` (true), ``baseline_plan_hash`` and ``action`` (``none``: ATS reports, it does not
pin plans); ``plan_hash`` in the envelope is the new plan's.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from typing import Any, Final, NamedTuple

from ats import side
from ats._native import normalize, plan_fingerprint, scrub
from ats.instrumentation import count_error

__all__ = ["PlanSettings", "configure", "is_plain_read", "request", "settings"]

COMPONENT: Final = "ats.plans"
PLAN_EVENT: Final = "air.plan.ok"
REGRESSION_EVENT: Final = "udr.compile.ok"
_DIALECTS: Final = frozenset({"postgresql", "mysql"})
_SEVERITY_INFO: Final = 9
_SEVERITY_WARN: Final = 13
#: Bound of the per-process tables (air_id rate limits, baselines, plans seen).
_MAX_ENTRIES: Final = 10_000

# Words that make a SELECT more than a read (data-modifying CTEs, SELECT INTO, row locks,
# several statements). Conservative: a match only means "not explained".
_NOT_READ: Final = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|INTO|CREATE|DROP|ALTER|TRUNCATE|CALL|COPY|GRANT|REVOKE|LOCK|SHARE|"
    r"NOWAIT|SET|EXPLAIN|ANALYZE)\b|;",
    re.IGNORECASE,
)


class PlanSettings(NamedTuple):
    """``plans.*`` configuration keys."""

    enabled: bool = False
    latency_ms: float = 500.0
    interval_s: float = 300.0
    queue_size: int = side.DEFAULT_QUEUE_SIZE


_settings = PlanSettings()
#: ``plans.latency_ms`` in ns, or None when plans are off (the per-call check reads only this).
_threshold_ns: int | None = None


def configure(new: PlanSettings) -> None:
    """Applies ``plans.*`` (called by ``ats.init``/``reload``; tests call it directly)."""
    global _settings, _threshold_ns
    _settings = new
    _threshold_ns = int(new.latency_ms * 1e6) if new.enabled else None
    side.resize(new.queue_size)


def settings() -> PlanSettings:
    return _settings


def is_plain_read(normalized_text: str, operation: str) -> bool:
    """Whether a normalised statement is a single read that EXPLAIN may plan."""
    return operation == "SELECT" and _NOT_READ.search(normalized_text) is None


class _State:
    """Per-process memory of plans: rate limits, baselines, hashes seen (bounded LRU tables)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_request: OrderedDict[str, float] = OrderedDict()
        self.baseline: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.last_plan: OrderedDict[str, str] = OrderedDict()
        self.seen: OrderedDict[str, None] = OrderedDict()

    def admit(self, air_id: str, now: float, interval: float) -> bool:
        with self.lock:
            last = self.last_request.get(air_id)
            if last is not None and now - last < interval:
                return False
            _put(self.last_request, air_id, now)
            return True

    def observe(self, air_id: str, plan_hash: str, cost: float | None) -> tuple[bool, tuple[str, float] | None]:
        """Remembers a captured plan: (first time this hash is seen, regression baseline or None)."""
        with self.lock:
            new = plan_hash not in self.seen
            _put(self.seen, plan_hash, None)
            previous = self.last_plan.get(air_id)
            _put(self.last_plan, air_id, plan_hash)
            base = self.baseline.get(air_id)
            regressed = None
            if cost is not None:
                if base is None or cost < base[1]:
                    _put(self.baseline, air_id, (plan_hash, cost))
                elif previous != plan_hash and plan_hash != base[0] and cost > base[1]:
                    regressed = base
            return new, regressed


def _put(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    if len(table) > _MAX_ENTRIES:
        table.popitem(last=False)


_STATE = _State()


def reset() -> None:
    """Forgets every baseline, rate limit and seen plan (tests; a fresh process starts empty)."""
    global _STATE
    _STATE = _State()


class PlanJob:
    """One EXPLAIN to run on the side worker."""

    __slots__ = ("pipeline", "dialect", "sql", "params", "connector", "air_id", "trace_id", "span_id")

    def __init__(self, pipeline: Any, dialect: str, sql: str, params: Any, connector: side.Connector,
                 air_id: str) -> None:  # fmt: skip
        self.pipeline = pipeline
        self.dialect = dialect
        self.sql = sql
        self.params = params
        self.connector = connector
        self.air_id = air_id
        self.trace_id: str | None = None
        self.span_id = 0

    def link(self, trace_id: str | None, span_id: int) -> None:
        """Called once the statement's span is recorded: queue the EXPLAIN for it."""
        self.trace_id, self.span_id = trace_id, span_id
        side.submit(self.run)

    def run(self) -> None:
        import json

        session = self.connector()
        try:
            with side.read_only(session):
                raw = _explain(session, self.sql, self.params)
        finally:
            session.close()
        plan = json.loads(raw) if isinstance(raw, str) else raw
        redacted = redact(plan, self.dialect)
        text = scrub(json.dumps(redacted, sort_keys=True, separators=(",", ":")))
        plan_hash = plan_fingerprint(text)
        cost = plan_cost(plan, self.dialect)
        new, regressed = _STATE.observe(self.air_id, plan_hash, cost)
        self._emit(plan_hash, cost, new, text)
        if regressed is not None and cost is not None:
            self._regression(plan_hash, regressed, cost)

    def _emit(self, plan_hash: str, cost: float | None, new: bool, text: str) -> None:
        attributes: dict[str, Any] = {"db.sqlx.plan_hash": plan_hash, "db.sqlx.plan_new": new}
        if cost is not None:
            attributes["db.sqlx.plan_cost"] = cost
        self.pipeline.emit_log(
            PLAN_EVENT, COMPONENT, _SEVERITY_INFO, text if new else "", time.time_ns(), self.trace_id,
            self.span_id, attributes, self.dialect, self.air_id, plan_hash,
        )  # fmt: skip

    def _regression(self, plan_hash: str, baseline: tuple[str, float], cost: float) -> None:
        attributes = {
            "baseline_cost": baseline[1], "new_cost": cost, "regression": True,
            "baseline_plan_hash": baseline[0], "action": "none",
        }  # fmt: skip
        body = f"plan of {self.air_id} changed from {baseline[0]} to {plan_hash}: cost {baseline[1]:g} -> {cost:g}"
        self.pipeline.emit_log(
            REGRESSION_EVENT, COMPONENT, _SEVERITY_WARN, body, time.time_ns(), self.trace_id, self.span_id,
            attributes, self.dialect, self.air_id, plan_hash,
        )  # fmt: skip


def _explain(session: side.Session, sql: str, params: Any) -> Any:
    if session.dialect == "mysql":
        return side.first_column(session.query("EXPLAIN FORMAT=JSON " + sql, params))
    if _uses_numbered_placeholders(sql) and _pg_version(session) >= 160000:
        return side.first_column(session.query("EXPLAIN (FORMAT JSON, GENERIC_PLAN) " + sql))
    return side.first_column(session.query("EXPLAIN (FORMAT JSON) " + sql, params))


def _uses_numbered_placeholders(sql: str) -> bool:
    return re.search(r"\$[1-9]", sql) is not None


def _pg_version(session: side.Session) -> int:
    value = side.first_column(session.query("SHOW server_version_num"))
    return int(value) if value is not None and str(value).isdigit() else 0


def redact(plan: Any, dialect: str) -> Any:
    """The plan with every string normalised (literals become ``?``); keys and numbers kept."""
    if isinstance(plan, dict):
        return {k: redact(v, dialect) for k, v in plan.items()}
    if isinstance(plan, list):
        return [redact(v, dialect) for v in plan]
    if isinstance(plan, str):
        return _redact_text(plan, dialect)
    return plan


def _redact_text(text: str, dialect: str) -> str:
    # Plan strings are SQL expression fragments or names: normalised as a select list, so the
    # native lexer removes literals in every quoting form the dialect knows.
    out = normalize("SELECT " + text, dialect).text
    return out[7:] if out.startswith("SELECT ") else out


def plan_cost(plan: Any, dialect: str) -> float | None:
    """The planner's total cost (see the module docs for MySQL/MariaDB), None when absent."""
    try:
        if dialect == "postgresql":
            return float(plan[0]["Plan"]["Total Cost"])
        block = plan["query_block"]
        cost_info = block.get("cost_info")
        if isinstance(cost_info, dict) and "query_cost" in cost_info:
            return float(cost_info["query_cost"])
        if "cost" in block:
            return float(block["cost"])
        rows = [float(t["rows"]) for t in _tables(block) if "rows" in t]
        if not rows:
            return None
        product = 1.0
        for r in rows:
            product *= max(r, 1.0)
        return product
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _tables(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        table = node.get("table")
        if isinstance(table, dict):
            found.append(table)
        for key, value in node.items():
            if key != "table":
                found.extend(_tables(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_tables(value))
    return found


def request(pipeline: Any, dialect: str, sql: str | None, start_ns: int, spec: side.SideSpec | None,
            obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> PlanJob | None:  # fmt: skip
    """A plan job for this call when it qualifies (see the module docs), else None; never raises.

    Cheap when plans are off or the call was fast: one attribute read and one clock read.
    """
    threshold = _threshold_ns
    if threshold is None or time.time_ns() - start_ns < threshold:
        return None
    if spec is None or sql is None or dialect not in _DIALECTS:
        return None
    try:
        norm = normalize(sql, dialect)
        if not is_plain_read(norm.text, norm.operation):
            return None
        if not _STATE.admit(norm.air_id, time.monotonic(), _settings.interval_s):
            return None
        return PlanJob(pipeline, dialect, sql, spec.params(args, kwargs), spec.connector(obj), norm.air_id)
    except Exception as exc:
        count_error("plans.request", exc)
        return None
