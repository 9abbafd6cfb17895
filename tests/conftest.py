from __future__ import annotations

import json
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
