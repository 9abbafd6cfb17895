"""SQL normalisation and fingerprints, computed natively.

``normalize`` turns a statement into text that is safe to record (every literal
becomes ``?``) plus a deterministic ``air_id``; ``plan_fingerprint`` hashes an
EXPLAIN plan with costs and timings stripped. Results are cached by statement
text, so calling these on every query is cheap.
"""

from __future__ import annotations

from ats._native import FINGERPRINT_VERSION, Normalized, plan_fingerprint
from ats._native import normalize as _normalize

__all__ = ["FINGERPRINT_VERSION", "DIALECTS", "Normalized", "normalize", "plan_fingerprint"]

#: Dialect names accepted by :func:`normalize` (aliases: postgres, pg, mariadb, sqlite3).
DIALECTS = ("postgresql", "mysql", "sqlite", "generic")


def normalize(sql: str, dialect: str | None = None) -> Normalized:
    """Sanitise and fingerprint ``sql``.

    :param sql: the statement as the driver received it; any size, any content.
    :param dialect: one of :data:`DIALECTS` (or an alias); ``None`` means generic.
    :raises ValueError: for an unknown dialect name (the message lists the allowed ones).
    """
    return _normalize(sql, dialect)
