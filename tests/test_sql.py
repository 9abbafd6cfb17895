"""ats.sql through the native module: golden vectors, edge inputs, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest

import ats
from ats import sql


def test_golden_statements_match_in_this_process(golden_fingerprints: Any) -> None:
    statements = golden_fingerprints["statements"]
    assert len(statements) >= 50
    for case in statements:
        n = sql.normalize(case["sql"], case["dialect"])
        got = (n.text, n.air_id, n.operation, list(n.tables), n.summary)
        want = (case["text"], case["air_id"], case["operation"], case["tables"], case["summary"])
        assert got == want, case["sql"]


def test_golden_plans_match(golden_fingerprints: Any) -> None:
    plans = golden_fingerprints["plans"]
    assert plans
    for case in plans:
        assert sql.plan_fingerprint(case["plan"]) == case["plan_hash"]


def test_air_ids_are_identical_in_a_fresh_process(golden_fingerprints: Any) -> None:
    # Hash seeds, caches and allocation order must not leak into fingerprints.
    cases = golden_fingerprints["statements"][:20]
    script = (
        "import json,sys; from ats import sql;"
        "cases=json.load(sys.stdin);"
        "print(json.dumps([sql.normalize(c['sql'], c['dialect']).air_id for c in cases]))"
    )
    import json

    out = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [c["air_id"] for c in cases]


def test_literals_become_placeholders_and_fields_are_filled() -> None:
    n = sql.normalize("SELECT name FROM users WHERE age > 42 AND email = 'bob@example.com'", "postgresql")
    assert n.text == "SELECT name FROM users WHERE age > ? AND email = ?"
    assert n.operation == "SELECT"
    assert n.tables == ("users",)
    assert n.summary == "SELECT users"
    assert n.dialect == "postgresql"
    assert n.air_id.startswith("air:Q-") and len(n.air_id) == len("air:Q-") + 16
    int(n.air_id[len("air:Q-") :], 16)


def test_equivalent_statements_share_air_id() -> None:
    a = sql.normalize("select * from t where id in (1, 2, 3) -- first", "postgresql")
    b = sql.normalize("SELECT *\n  FROM t WHERE id IN ($1)", "postgresql")
    c = sql.normalize("SELECT * FROM t WHERE id > 1", "postgresql")
    assert a.air_id == b.air_id
    assert a.air_id != c.air_id


def test_unknown_dialect_names_the_allowed_values() -> None:
    with pytest.raises(ValueError) as info:
        sql.normalize("SELECT 1", "oracle9")
    message = str(info.value)
    assert "oracle9" in message
    for allowed in ("postgresql", "mysql", "sqlite", "generic"):
        assert allowed in message


@pytest.mark.parametrize("dialect", [None, "postgresql", "mysql", "sqlite", "generic"])
def test_defined_results_for_bad_input(dialect: str | None) -> None:
    assert sql.normalize("", dialect).text == ""
    # Unterminated literal and comment: redacted to the end, nothing leaks.
    assert "secret" not in sql.normalize("SELECT 'secret", dialect).text
    assert "hunter2" not in sql.normalize("SELECT 1 /* hunter2", dialect).text
    # Binary junk and lone surrogates (invalid UTF-8 decoded with surrogateescape).
    junk = bytes(range(256)).decode("latin-1")
    assert isinstance(sql.normalize(junk, dialect).text, str)
    surrogates = b"SELECT '\xff\xfe' FROM t".decode("utf-8", "surrogateescape")
    n = sql.normalize(surrogates, dialect)
    assert n.text == "SELECT ? FROM t"
    assert ats._native.native_panics() == 0


def test_huge_statement_is_normalised() -> None:
    values = ",".join(f"({i}, 'name-{i}')" for i in range(450_000))
    statement = "INSERT INTO big (id, name) VALUES " + values
    assert len(statement) > 10_000_000
    n = sql.normalize(statement, "sqlite")
    assert n.text == "INSERT INTO big (id, name) VALUES (?, ?)"
    assert n.tables == ("big",)
    assert "name-1" not in n.text


def test_plan_fingerprint_ignores_costs_and_rejects_bad_json() -> None:
    plan_a = '[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Total Cost": 1.5, "Plan Rows": 10}}]'
    plan_b = '[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Total Cost": 99.0, "Plan Rows": 7}}]'
    plan_c = '[{"Plan": {"Node Type": "Index Scan", "Relation Name": "t", "Total Cost": 1.5, "Plan Rows": 10}}]'
    assert sql.plan_fingerprint(plan_a) == sql.plan_fingerprint(plan_b)
    assert sql.plan_fingerprint(plan_a) != sql.plan_fingerprint(plan_c)
    assert sql.plan_fingerprint(plan_a).startswith("ph:")
    with pytest.raises(ValueError):
        sql.plan_fingerprint("{not json")


def test_concurrent_normalisation_is_consistent() -> None:
    statements = [f"SELECT c{i % 7} FROM t{i % 5} WHERE x = {i}" for i in range(2_000)]
    expected = {s: sql.normalize(s, "mysql").air_id for s in statements}
    errors: list[str] = []

    def worker() -> None:
        for s in statements:
            if sql.normalize(s, "mysql").air_id != expected[s]:
                errors.append(s)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
