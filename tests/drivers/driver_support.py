"""Shared helpers of the driver tests (servers, the recording pipeline, literal values)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ats import _native

SECRET = "hunter2-SECRET-9f8e7d"
LITERAL_NAME = "Margaret Hamilton"
LITERAL_EMAIL = "margaret@example.org"
LITERALS = (SECRET, LITERAL_NAME, LITERAL_EMAIL, "hunter2", "margaret")


def attrs(span: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a JSONL span record."""
    found: dict[str, Any] = span["attributes"]
    return found


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str
    socket: str

    @property
    def dsn(self) -> str:
        return (
            f"host={self.host} port={self.port} user={self.user}"
            f" password={self.password} dbname={self.database}"
        )


class Recording:
    """A real pipeline writing to ``root``, and readers of what it wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pipeline = _native.Pipeline(store_path=str(root / "store.db"), jsonl_dir=str(root / "jsonl"))

    def spans(self) -> list[dict[str, Any]]:
        assert self.pipeline.flush(5.0)
        lines: list[dict[str, Any]] = []
        for path in sorted((self.root / "jsonl").glob("*.jsonl")):
            lines.extend(json.loads(line) for line in path.read_text().splitlines() if line)
        return [r for r in lines if r["kind"] == "span"]

    def names(self) -> list[str]:
        return [s["evt"] for s in self.spans()]

    def stored_bytes(self) -> bytes:
        """Every byte ATS wrote: the SQLite store (with WAL/SHM) and the JSONL files."""
        assert self.pipeline.flush(5.0)
        return b"".join(p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file())

    def assert_no_literals(self) -> None:
        data = self.stored_bytes().lower()
        assert (self.root / "store.db").stat().st_size > 0
        for value in LITERALS:
            assert value.lower().encode() not in data, value

