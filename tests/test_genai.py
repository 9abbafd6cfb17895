"""ats.genai.GenAIRecorder: parent resolution through skipped runs, bounds, and never raising."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ats
from ats import _runtime, genai


# First: the module's runtime fixture starts ATS for the tests after it.
def test_nothing_is_recorded_without_a_runtime() -> None:
    assert _runtime.current() is None
    recorder = genai.GenAIRecorder("test")
    assert recorder.start("a", None, genai.AGENT, "bot") is False
    recorder.end("a")  # no-op
    assert recorder._runs == {}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_runtime.Runtime]:
    home: Path = tmp_path_factory.mktemp("genai") / ".ats"
    rt = ats.init(**{"home": str(home), "metrics.interval_ms": 3_600_000})
    assert rt is not None
    yield rt
    ats.shutdown(5.0)


@dataclass
class Node:
    kind: str  # genai kinds, or "skip"
    children: list[Node] = field(default_factory=list)


KINDS = st.sampled_from([genai.AGENT, genai.CHAT, genai.TOOL, genai.STEP, "skip"])
TREES = st.recursive(st.builds(Node, KINDS), lambda kids: st.builds(Node, KINDS, st.lists(kids, max_size=4)),
                     max_leaves=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=TREES)
def test_runs_attach_to_the_nearest_recorded_ancestor_and_nothing_stays_open(
        runtime: _runtime.Runtime, tree: Node) -> None:
    recorder = genai.GenAIRecorder("test")
    counter = iter(range(1_000_000))
    seen: list[tuple[int | None, int | None]] = []  # (parent span id observed, expected)

    def walk(node: Node, parent_key: int | None, recorded_ancestor: int | None) -> None:
        key = next(counter)
        if node.kind == "skip":
            recorder.skip(key, parent_key)
            below = recorded_ancestor
        else:
            assert recorder.start(key, parent_key, node.kind, f"n{key}")
            run = recorder._runs[key]
            seen.append((run.parent_span_id or None, recorded_ancestor))
            below = run.span_id
        for child in node.children:
            walk(child, key, below)
        recorder.end(key, result="x")

    walk(tree, None, None)
    assert [observed for observed, _ in seen] == [expected for _, expected in seen]
    assert recorder._runs == {} and recorder._aliases == {}
    assert recorder.dropped == 0


def test_open_runs_are_bounded_and_drops_counted(runtime: _runtime.Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(genai, "MAX_OPEN_RUNS", 3)
    recorder = genai.GenAIRecorder("test")
    assert [recorder.start(k, None, genai.CHAT, "m") for k in range(5)] == [True, True, True, False, False]
    assert recorder.dropped == 2
    for k in reversed(range(5)):
        recorder.end(k)
    assert recorder._runs == {}
    assert ats.current_span() is None


def test_runs_are_current_while_open_and_restored_in_order(runtime: _runtime.Runtime) -> None:
    recorder = genai.GenAIRecorder("test")
    assert recorder.start("agent", None, genai.AGENT, "bot")
    agent = ats.current_span()
    assert agent is not None and agent.span_id == recorder.span_id("agent")
    assert recorder.start("tool", "agent", genai.TOOL, "t")
    tool = ats.current_span()
    assert tool is not None and tool.span_id == recorder.span_id("tool") and tool.trace_id == agent.trace_id
    recorder.end("tool")
    assert ats.current_span() == agent
    recorder.end("agent")
    assert ats.current_span() is None
    # Out of order: ending the outer run first leaves the inner one current until it ends.
    assert recorder.start("a", None, genai.AGENT, "bot") and recorder.start("b", "a", genai.TOOL, "t")
    inner = ats.current_span()
    recorder.end("a")
    assert ats.current_span() == inner
    recorder.end("b")
    assert ats.current_span() is None  # "a" is over: it does not come back


def test_failures_inside_ats_are_counted_never_raised(runtime: _runtime.Runtime) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"broken {name}")

    recorder = genai.GenAIRecorder("test")
    assert recorder.start("a", None, genai.AGENT, "bot")
    pipeline = runtime.pipeline
    before = runtime.errors.counts.get("test.end", 0)
    runtime.pipeline = Broken()  # type: ignore[assignment]
    try:
        recorder.end("a")
        assert recorder.start("b", None, genai.AGENT, "bot") is False  # new_trace_id fails: counted
    finally:
        runtime.pipeline = pipeline
    assert runtime.errors.counts["test.end"] == before + 1
    assert runtime.errors.counts["test.start"] >= 1
    active = [p["value"] for p in ats.metrics.snapshot() if p["name"] == "agent.active"]
    assert active == [0.0]  # the failed end still ended the agent


def test_content_is_scrubbed_json_and_bounded() -> None:
    assert genai.content({"to": "ada@example.org", "n": 1}) == '{"n": 1, "to": "[EMAIL]"}'
    assert genai.content("x" * (genai.MAX_CONTENT_CHARS + 10)) == "x" * genai.MAX_CONTENT_CHARS
