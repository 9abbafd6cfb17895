"""Reads an ATS store from a test whose own process may be writing it.

Python's ``sqlite3`` links another copy of SQLite than the store's writer (rusqlite, bundled).
Two copies on one WAL database in one process break each other's POSIX locks, and an opener
that believes it is alone truncates the ``-shm`` file the writer has mapped: the process dies
of SIGBUS. So tests that read a store their own pipeline writes go through
``ats._native.store_query``, the writer's own SQLite. ``connect(path).execute(sql).fetchall()``
reads like the ``sqlite3`` calls it replaces; it is read-only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from os import PathLike
from typing import Any

from ats import _native


class Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


class StoreReader:
    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = str(path)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        return Rows(_native.store_query(self.path, sql, list(params)))

    def close(self) -> None:
        """Nothing to release: every query opens and closes its own connection."""

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: str | PathLike[str], uri: bool = False) -> StoreReader:
    """``uri`` is accepted for symmetry with ``sqlite3.connect``; ``file:`` URIs always work."""
    return StoreReader(path)
