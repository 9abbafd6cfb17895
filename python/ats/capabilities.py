"""Capability discovery (seed 000 §7.3): what each database server can do, once per process.

Opt-in (``capabilities.enabled``: it opens one extra connection per server).  On the first
successful handshake to a server (dialect, host, port, database) in this process, a job on the
side worker (:mod:`ats.side`) opens a separate connection with the same parameters, reads the
server's version, runs a few harmless probe statements (each in its own ``READ ONLY``
transaction, rolled back) and records one log record per capability:

event ``udr.capability.ok`` (seed 000 §7.3 gives the record's fields but no event name; it is
filed under the registered ``udr`` family, the dialect runtime whose emulation decisions the
capabilities feed, so registry rules, retention and export apply), envelope ``dialect``
(``postgresql`` / ``mysql``), attributes exactly:

``version`` (``15.18``, ``10.11.14``), ``capability`` (one of :data:`CAPABILITIES`),
``supported`` (bool), ``evidence`` (what was observed: ``row_number() accepted`` for a probe,
``server_version_num=150018 >= 90500`` for a version rule), ``confidence`` (0.98 for an
accepted probe, 0.95 for a rejected one, 0.9 for a version rule), ``db.system.name``
(``postgresql`` / ``mariadb`` / ``mysql``), ``server.address``, ``server.port``, ``db.namespace``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from ats import side
from ats.instrumentation import count_error

__all__ = ["CAPABILITIES", "EVENT", "configure", "discover", "reset"]

EVENT: Final = "udr.capability.ok"
COMPONENT: Final = "ats.capabilities"
_SEVERITY_INFO: Final = 9
_PROBE_OK: Final = 0.98
_PROBE_REJECTED: Final = 0.95
_VERSION_RULE: Final = 0.9


class Probe(NamedTuple):
    """A capability shown by running ``sql`` (read-only, no table needed)."""

    capability: str
    sql: str
    evidence: str


class VersionRule(NamedTuple):
    """A capability implied by the server's version (statements that would need a table or a write)."""

    capability: str
    #: ``(server kind, numeric version) -> supported``
    supported: Callable[[str, int], bool]
    #: human-readable threshold, e.g. ``>= 90500``
    threshold: Callable[[str], str]


# The same text on both dialects (standard SQL).
_RECURSIVE_CTE: Final = Probe(
    "RECURSIVE_CTE",
    "WITH RECURSIVE t(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM t WHERE x < 2) SELECT count(*) FROM t",
    "WITH RECURSIVE accepted",
)
_PG_PROBES: Final[tuple[Probe, ...]] = (
    Probe("WINDOW", "SELECT row_number() OVER () FROM (VALUES (1)) AS t(x)", "row_number() accepted"),
    Probe("CTE", "WITH t(x) AS (SELECT 1) SELECT x FROM t", "WITH accepted"),
    _RECURSIVE_CTE,
    Probe("JSON", "SELECT CAST('{}' AS json)", "json type accepted"),
    Probe("JSONB", "SELECT CAST('{}' AS jsonb)", "jsonb type accepted"),
    Probe("GENERIC_PLAN", "EXPLAIN (GENERIC_PLAN) SELECT 1", "EXPLAIN (GENERIC_PLAN) accepted"),
)
_MY_PROBES: Final[tuple[Probe, ...]] = (
    Probe("WINDOW", "SELECT row_number() OVER () FROM (SELECT 1 AS x) AS t", "row_number() accepted"),
    Probe("CTE", "WITH t AS (SELECT 1 AS x) SELECT x FROM t", "WITH accepted"),
    _RECURSIVE_CTE,
    Probe("JSON", "SELECT JSON_OBJECT('a', 1)", "JSON_OBJECT() accepted"),
)
_PG_RULES: Final[tuple[VersionRule, ...]] = (
    VersionRule("RETURNING", lambda _k, v: v >= 80200, lambda _k: ">= 80200"),
    VersionRule("ON_CONFLICT", lambda _k, v: v >= 90500, lambda _k: ">= 90500"),
    VersionRule("MERGE", lambda _k, v: v >= 150000, lambda _k: ">= 150000"),
)
_MY_RULES: Final[tuple[VersionRule, ...]] = (
    # INSERT ... RETURNING: MariaDB 10.5+, never MySQL
    VersionRule("RETURNING", lambda k, v: k == "mariadb" and v >= 100500,
                lambda k: ">= 100500" if k == "mariadb" else "(mysql: none)"),
    VersionRule("ON_DUPLICATE_KEY", lambda _k, _v: True, lambda _k: ">= 0"),
)

#: Every capability name recorded, per dialect (in record order).
CAPABILITIES: Final = {
    "postgresql": tuple(p.capability for p in _PG_PROBES) + tuple(r.capability for r in _PG_RULES),
    "mysql": tuple(p.capability for p in _MY_PROBES) + tuple(r.capability for r in _MY_RULES),
}

_enabled = False
_lock = threading.Lock()
_seen: set[tuple[str, str, int, str]] = set()


def configure(enabled: bool) -> None:
    """Applies ``capabilities.enabled`` (``ats.init``/``reload``; tests call it directly)."""
    global _enabled
    _enabled = enabled


def reset() -> None:
    """Forgets the servers already discovered (tests; a forked child keeps the parent's)."""
    with _lock:
        _seen.clear()


def discover(pipeline: Any, dialect: str, host: str, port: int, namespace: str,
             connector: Callable[[], side.Connector]) -> None:  # fmt: skip
    """Queues discovery of this server unless already done in this process; never raises.

    ``connector`` is called here (app thread: it only reads parameters) to get the opener.
    """
    if not _enabled or dialect not in CAPABILITIES:
        return
    key = (dialect, host, port, namespace)
    try:
        with _lock:
            if key in _seen:
                return
            _seen.add(key)
        opener = connector()
        side.submit(lambda: _run(pipeline, dialect, host, port, namespace, opener))
    except Exception as exc:
        count_error("capabilities.discover", exc)


def _run(pipeline: Any, dialect: str, host: str, port: int, namespace: str, opener: side.Connector) -> None:
    session = opener()
    try:
        if dialect == "postgresql":
            kind, version, number, number_evidence = _pg_version(session)
            probes, rules = _PG_PROBES, _PG_RULES
        else:
            kind, version, number, number_evidence = _my_version(session)
            probes, rules = _MY_PROBES, _MY_RULES
        found = [(p.capability, *_probe(session, p)) for p in probes]
        for rule in rules:
            ok = rule.supported(kind, number)
            found.append((rule.capability, ok, f"{number_evidence} {rule.threshold(kind)}", _VERSION_RULE))
    finally:
        session.close()
    for capability, supported, evidence, confidence in found:
        attributes = {
            "version": version, "capability": capability, "supported": supported, "evidence": evidence,
            "confidence": confidence, "db.system.name": kind, "server.address": host, "server.port": port,
            "db.namespace": namespace,
        }  # fmt: skip
        pipeline.emit_log(
            EVENT, COMPONENT, _SEVERITY_INFO, f"{capability} {'supported' if supported else 'unsupported'}",
            time.time_ns(), None, 0, attributes, dialect,
        )  # fmt: skip


def _probe(session: side.Session, probe: Probe) -> tuple[bool, str, float]:
    try:
        with side.read_only(session):
            session.query(probe.sql)
    except Exception as exc:
        if _connection_lost(session):
            raise
        return False, probe.evidence.replace("accepted", f"rejected ({type(exc).__name__})"), _PROBE_REJECTED
    return True, probe.evidence, _PROBE_OK


def _connection_lost(session: side.Session) -> bool:
    try:
        session.query("SELECT 1")
        return False
    except Exception:
        return True


def _pg_version(session: side.Session) -> tuple[str, str, int, str]:
    number = int(side.first_column(session.query("SHOW server_version_num")))
    # 150018 -> 15.18; before 10: 90624 -> 9.6.24
    if number >= 100000:
        version = f"{number // 10000}.{number % 10000}"
    else:
        version = f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return "postgresql", version, number, f"server_version_num={number}"


def _my_version(session: side.Session) -> tuple[str, str, int, str]:
    text = str(side.first_column(session.query("SELECT VERSION()")))
    kind = "mariadb" if "mariadb" in text.lower() else "mysql"
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    parts = [int(g) for g in m.groups()] if m else [0, 0, 0]
    number = parts[0] * 10000 + parts[1] * 100 + parts[2]
    return kind, ".".join(map(str, parts)), number, f"VERSION()={text} -> {number}"
