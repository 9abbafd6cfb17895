"""Native hot-path figures: normalise (first sight and cached), scrub.

Run: .venv/bin/python -m pytest benches/test_bench_native.py --benchmark-only
"""

from __future__ import annotations

import itertools
from typing import Any

from ats import privacy, sql

STATEMENT = (
    "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id "
    "WHERE u.email = 'bob@example.com' AND o.created_at > '2025-01-01' AND o.status IN (1, 2, 3) "
    "ORDER BY o.created_at DESC LIMIT 50"
)
TEXT_CLEAN = "request finished in 12.3 ms for tenant acme, workspace prod-eu, 42 rows, plan ph:ab12 " * 2
TEXT_DIRTY = "user bob@example.com called with token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 from 10.0.0.1"


def test_normalize_cached(benchmark: Any) -> None:
    sql.normalize(STATEMENT, "postgresql")
    benchmark(sql.normalize, STATEMENT, "postgresql")


def test_normalize_first_sight(benchmark: Any) -> None:
    # A new literal-free variant each call defeats the statement cache (distinct text).
    counter = itertools.count()

    def first_sight() -> None:
        sql.normalize(STATEMENT.replace("LIMIT 50", f"LIMIT 50 OFFSET {next(counter)}"), "postgresql")

    benchmark(first_sight)


def test_scrub_clean(benchmark: Any) -> None:
    benchmark(privacy.scrub, TEXT_CLEAN)


def test_scrub_dirty(benchmark: Any) -> None:
    benchmark(privacy.scrub, TEXT_DIRTY)
