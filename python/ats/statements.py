"""What ATS adds to every database statement a driver layer records, once for all plugins.

* the SLO class (seed 001 §7: ``L`` low-latency OLTP, ``B`` bulk ETL, ``A`` analytics, ``S``
  system/DDL) chosen by the ``slo.rules`` configuration -> span attribute ``sqlx.class`` and the
  histogram ``sqlx_exec_latency_ms{class}``;
* a ``ddl.migration.ok`` / ``ddl.migration.error`` log record (seed 000 §3) for each DDL
  statement, linked to the statement's span by trace and span id.

:mod:`ats.drivers` calls :func:`describe` before and :func:`after_record` after its one
``record_query`` call; nothing here raises into the program (the callers count failures).
"""

from __future__ import annotations

import re
from fnmatch import translate
from typing import Any, Final, NamedTuple

from ats._native import normalize

__all__ = ["Classifier", "StatementFacts", "after_record", "classifier_for", "describe"]

#: Log events of a DDL statement (seed 000 §3 ``ddl.migration.start|ok|rollback``; the
#: host's suffix convention gives the failed one ``.error``).
DDL_OK: Final = "ddl.migration.ok"
DDL_ERROR: Final = "ddl.migration.error"
_DDL_COMPONENT: Final = "ats.drivers"
_SEVERITY_INFO: Final = 9
_SEVERITY_ERROR: Final = 17


class _Rule(NamedTuple):
    slo_class: str
    operations: frozenset[str]
    tables: re.Pattern[str] | None
    summary: re.Pattern[str] | None
    min_latency_ms: float | None


def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns), re.IGNORECASE)


class Classifier:
    """Compiled ``slo.rules``: the first rule whose conditions all hold decides."""

    __slots__ = ("_rules", "_default", "ddl_operations")

    def __init__(self, rules: tuple[Any, ...], default_class: str) -> None:
        self._rules = tuple(
            _Rule(
                r.slo_class, frozenset(r.operations), _globs(r.tables),
                None if r.summary is None else _globs((r.summary,)), r.min_latency_ms,
            )  # fmt: skip
            for r in rules
        )
        self._default = default_class

    def classify(self, operation: str, table: str, summary: str, latency_ms: float) -> str:
        for rule in self._rules:
            if rule.operations and operation not in rule.operations:
                continue
            if rule.tables is not None and not rule.tables.match(table):
                continue
            if rule.summary is not None and not rule.summary.match(summary):
                continue
            if rule.min_latency_ms is not None and latency_ms < rule.min_latency_ms:
                continue
            return rule.slo_class
        return self._default


def _default_classifier() -> Classifier:
    from ats.config._keys import DEFAULT_SLO_RULES
    from ats.config._model import SloRule

    return Classifier(tuple(SloRule(*r) for r in DEFAULT_SLO_RULES), "L")


_cache: dict[str, Any] = {"config": None, "classifier": None, "commenter": False}


def classifier_for(rt: Any) -> Classifier:
    """The classifier of the runtime's configuration (rebuilt only when it changes)."""
    config = getattr(rt, "config", None)
    if _cache["classifier"] is None or config is not _cache["config"]:
        slo = getattr(config, "slo", None)
        classifier = _default_classifier() if slo is None else Classifier(slo.rules, slo.default_class)
        commenter = getattr(config, "sqlcommenter", None)
        _cache.update(config=config, classifier=classifier,
                      commenter=bool(getattr(commenter, "enabled", False)))  # fmt: skip
    result: Classifier = _cache["classifier"]
    return result


def commenter_enabled(rt: Any) -> bool:
    """Whether ``sqlcommenter.enabled`` is on in the runtime's configuration."""
    classifier_for(rt)
    return bool(_cache["commenter"])


#: DDL operations (the statement is a schema change): a ``ddl.migration.*`` log each.
DDL_OPERATIONS: Final = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT"})


class StatementFacts(NamedTuple):
    slo_class: str
    ddl: bool
    operation: str
    table: str
    air_id: str


def describe(rt: Any, dialect: str, sql: str, start_ns: int, end_ns: int) -> StatementFacts:
    """Classify one executed statement (normalisation is cached natively: ``record_query``
    right after reuses it)."""
    n = normalize(sql, dialect)
    table = n.tables[0] if n.tables else ""
    slo_class = classifier_for(rt).classify(n.operation, table, n.summary, (end_ns - start_ns) / 1e6)
    return StatementFacts(slo_class, n.operation in DDL_OPERATIONS, n.operation, table, n.air_id)


_latency: dict[str, Any] = {}


def after_record(
    rt: Any, facts: StatementFacts, dialect: str, component: str, start_ns: int, end_ns: int,
    trace_id: str | None, span_id: int, error_type: str | None,
) -> None:  # fmt: skip
    """The class's latency histogram and, for DDL, the linked ``ddl.migration.*`` log."""
    histogram = _latency.get("h")
    if histogram is None:
        from ats import metrics

        histogram = _latency["h"] = metrics.histogram("sqlx_exec_latency_ms", "ms")
    histogram.record((end_ns - start_ns) / 1e6, {"class": facts.slo_class})
    if not facts.ddl:
        return
    attributes: dict[str, Any] = {"db.operation": facts.operation, "sqlx.class": facts.slo_class}
    if facts.table:
        attributes["db.collection.name"] = facts.table
    if error_type is not None:
        attributes["error.type"] = error_type
    rt.pipeline.emit_log(
        DDL_OK if error_type is None else DDL_ERROR, _DDL_COMPONENT,
        _SEVERITY_INFO if error_type is None else _SEVERITY_ERROR,
        f"{facts.operation} {facts.table}".strip(), end_ns, trace_id, span_id, attributes, dialect,
        facts.air_id,
    )  # fmt: skip
