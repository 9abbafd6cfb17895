"""Fixtures of the agent framework tests: a real ATS runtime writing to a temporary home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import Store

import ats


def _start(tmp_path: Path, capture: bool) -> Iterator[Store]:
    home = tmp_path / ".ats"
    rt = ats.init(**{"home": str(home), "metrics.interval_ms": 3_600_000, "genai.capture_content": capture})
    assert rt is not None
    try:
        yield Store(home)
    finally:
        ats.shutdown(5.0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from _start(tmp_path, capture=False)


@pytest.fixture
def capturing_store(tmp_path: Path) -> Iterator[Store]:
    yield from _start(tmp_path, capture=True)
