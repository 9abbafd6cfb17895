from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# The public test vectors live beside the repository (../shared/testdata), never inside it.
TESTDATA = REPO.parent / "shared" / "testdata"
GOLDEN = REPO / "rust" / "ats-core" / "tests" / "golden"


def load_json(path: Path) -> Any:
    # A missing vector file must fail the run, not skip it.
    with path.open(encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def golden_fingerprints() -> Any:
    return load_json(GOLDEN / "fingerprints.json")


@pytest.fixture
def ats_home_no_sqlite3(tmp_path: Path) -> Iterator[Path]:
    """ATS running on a store under ``tmp_path/.ats``, without its own sqlite3 plugin (so the test
    decides which database calls are recorded) and with metrics flushed only on demand."""
    import ats

    rt = ats.init(**{"home": str(tmp_path / ".ats"), "metrics.interval_ms": 3_600_000,
                     "plugins.disabled": ["ats-sqlite3"]})
    assert rt is not None
    yield tmp_path / ".ats"
    ats.shutdown(5.0)
