"""Fixtures for the driver plugins against the real servers started by ``ci/services.sh``.

Connection parameters come from ``ATS_PG_*`` / ``ATS_MYSQL_*`` environment variables, else
from ``.ci-services/env`` (written by ``ci/services.sh start``).  A server that cannot be
reached FAILS the test that needs it, with the command that starts it: these tests never skip.

``recording`` gives each test a real native pipeline (SQLite store + JSONL) behind a stand-in
runtime, exactly like tests/test_sqlite3_e2e.py: everything from ``record_query`` down is real.
"""

from __future__ import annotations

import os
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import ats
from driver_support import Recording, Server

REPO = Path(__file__).resolve().parents[2]
ENV_FILE = REPO / ".ci-services" / "env"


def _settings() -> dict[str, str]:
    values: dict[str, str] = {}
    if ENV_FILE.is_file():
        for line in ENV_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
    values.update({k: v for k, v in os.environ.items() if k.startswith(("ATS_PG_", "ATS_MYSQL_"))})
    return values


def _server(prefix: str, what: str) -> Server:
    s = _settings()
    try:
        server = Server(
            s[f"{prefix}_HOST"], int(s[f"{prefix}_PORT"]), s[f"{prefix}_USER"],
            s[f"{prefix}_PASSWORD"], s[f"{prefix}_DATABASE"],
            s.get(f"{prefix}_SOCKET", s.get(f"{prefix}_SOCKET_DIR", "")),
        )  # fmt: skip
    except KeyError as missing:
        pytest.fail(
            f"{what} connection parameters missing ({missing.args[0]}): run `bash ci/services.sh start`"
            f" (writes {ENV_FILE}) or set {prefix}_HOST/PORT/USER/PASSWORD/DATABASE",
            pytrace=False,
        )
    try:
        socket.create_connection((server.host, server.port), timeout=3).close()
    except OSError as exc:
        pytest.fail(
            f"{what} is not reachable on {server.host}:{server.port} ({exc}):"
            " start it with `bash ci/services.sh start`",
            pytrace=False,
        )
    return server


@pytest.fixture(scope="session")
def pg() -> Server:
    """The PostgreSQL server (fails when it is not running)."""
    return _server("ATS_PG", "PostgreSQL")


@pytest.fixture(scope="session")
def mysql() -> Server:
    """The MariaDB server (fails when it is not running)."""
    return _server("ATS_MYSQL", "MariaDB")


class StandInRuntime:
    def __init__(self, rec: Recording) -> None:
        self.pipeline = rec.pipeline



@pytest.fixture
def recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    rec = Recording(tmp_path)
    rt = StandInRuntime(rec)
    try:
        import ats._runtime as runtime_mod
    except ImportError:  # pragma: no cover - the runtime module ships with ats
        runtime_mod = types.ModuleType("ats._runtime")
        monkeypatch.setitem(sys.modules, "ats._runtime", runtime_mod)
        monkeypatch.setattr(ats, "_runtime", runtime_mod, raising=False)
    monkeypatch.setattr(runtime_mod, "current", lambda: rt, raising=False)
    try:
        yield rec
    finally:
        rec.pipeline.shutdown(5.0)
