"""Agent sessions (seed 004): ``ats.session`` / ``ats.tool_call`` spans in the store and the
``ats_session_*`` / ``ats_tool_execute_*`` hooks seen by a registered plugin."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ats
from ats import _runtime, hookimpl
from ats.context import SpanContext

import store_reader


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    rt = ats.init(**{"home": str(tmp_path / ".ats"), "tenant": "acme", "metrics.interval_ms": 3_600_000})
    assert rt is not None
    yield tmp_path / ".ats"
    ats.shutdown(5.0)


class Observer:
    """A real plugin object: records every session/tool hook call and the span current then."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    @hookimpl
    def ats_session_start(self, session: ats.Session) -> None:
        self.calls.append(("session_start", session.session_id, dict(session.attributes), ats.current_span()))

    @hookimpl
    def ats_session_end(self, session: ats.Session, outcome: str) -> None:
        self.calls.append(("session_end", session.session_id, outcome, ats.current_span()))

    @hookimpl
    def ats_tool_execute_before(self, call: ats.ToolCall) -> None:
        self.calls.append(("tool_before", call.name, dict(call.arguments), call.session_id, ats.current_span()))

    @hookimpl
    def ats_tool_execute_after(self, call: ats.ToolCall, result: object, error: BaseException | None,
                               duration_ns: int) -> None:
        assert isinstance(duration_ns, int) and duration_ns >= 0
        self.calls.append(("tool_after", call.name, result, type(error).__name__ if error else None,
                           ats.current_span()))


def observe() -> Observer:
    rt = _runtime.current()
    assert rt is not None
    obs = Observer()
    assert rt.plugins.register(obs, "observer") is True
    assert rt.plugins.check_pending() == []
    return obs


Row = tuple[str, str, str, str | None, str, str, dict[str, Any]]


def rows(home: Path) -> list[Row]:
    assert ats.flush(5.0)
    db = store_reader.connect(home / "ats.db")
    got = db.execute("SELECT name, component, span_id, parent_id, status, trace_id, attributes FROM spans_v "
                     "ORDER BY start_ns, name").fetchall()
    return [(n, c, s, p, st, t, json.loads(a)) for n, c, s, p, st, t, a in got]


def hexid(ctx: SpanContext | None) -> str:
    assert ctx is not None
    return f"{ctx.span_id:016x}"


def pop_number(attrs: dict[str, Any], key: str) -> float:
    value = attrs.pop(key)
    assert isinstance(value, (int, float)) and value >= 0
    return float(value)


def test_session_spans_attributes_and_hooks(home: Path) -> None:
    obs = observe()
    with ats.session("fix-issue-42", agent="coder", attempt=2) as s:
        assert ats.current_session() is s
        s.decision("use-index", reason="the scan is slow", options=["scan", "use-index"])
        with s.tool("read_file", version="1.0", arguments={"path": "a.py", "token": "dave@example.com"}) as t:
            t.result = "text"
        with pytest.raises(OSError):
            with s.tool("write_file", version="2.1") as t:
                raise OSError("disk full")
        s.error(ValueError("bad plan for dave@example.com"), recovered=True)
        s.set_summary("index added")
    assert ats.current_session() is None and ats.current_span() is None
    sid = s.session_id
    got = rows(home)
    assert [(r[0], r[1], r[4]) for r in got] == [
        ("session.start", "session", "ok"),
        ("decision", "session", "ok"),
        ("tool.execute", "tool", "ok"),
        ("tool.execute", "tool", "error"),
        ("error", "session", "error"),
        ("session.end", "session", "ok"),
    ]
    root = got[0]
    assert root[3] is None and {r[5] for r in got} == {root[5]}
    assert all(r[3] == root[2] for r in got[1:]), "everything is inside session.start"
    assert root[6] == {"session.id": sid, "session.name": "fix-issue-42", "session.agent": "coder",
                       "session.attempt": 2, "workspace.path": str(home.parent), "session.outcome": "ok"}
    assert got[1][6] == {"session.id": sid, "decision.choice": "use-index", "decision.reason": "the scan is slow",
                         "decision.options": "scan,use-index"}
    read, write = got[2][6], got[3][6]
    pop_number(read, "duration_ms")
    pop_number(write, "duration_ms")
    assert read == {"tool.name": "read_file", "tool.version": "1.0", "session.id": sid,
                    "tool.argument_names": "path,token", "tool.success": True}
    assert write == {"tool.name": "write_file", "tool.version": "2.1", "session.id": sid, "tool.success": False,
                     "error.type": "OSError", "exception.type": "builtins.OSError",
                     "exception.message": "disk full"}
    assert got[4][6] == {"session.id": sid, "error.type": "ValueError",
                         "error.message": "bad plan for [EMAIL]", "error.recovered": True}
    end = got[5][6]
    assert pop_number(end, "session.duration_ms") > 0
    assert end == {"session.id": sid, "session.outcome": "ok", "session.summary": "index added",
                   "session.tool_calls": 2, "session.tool_errors": 1, "session.decisions": 1, "session.errors": 1}
    # The hooks, in order, each seeing the span of its hook point as the current span.
    start_attrs = {"session.id": sid, "session.name": "fix-issue-42", "session.agent": "coder",
                   "session.attempt": 2, "workspace.path": str(home.parent)}
    calls = [c[:-1] + (hexid(c[-1]),) for c in obs.calls]
    assert calls == [
        ("session_start", sid, start_attrs, root[2]),
        ("tool_before", "read_file", {"path": "a.py", "token": "[EMAIL]"}, sid, got[2][2]),
        ("tool_after", "read_file", "text", None, got[2][2]),
        ("tool_before", "write_file", {}, sid, got[3][2]),
        ("tool_after", "write_file", None, "OSError", got[3][2]),
        ("session_end", sid, "ok", got[5][2]),
    ]


def test_exception_leaving_the_session_is_an_error_span_and_outcome(home: Path) -> None:
    obs = observe()
    with pytest.raises(KeyError):
        with ats.session("crash") as s:
            raise KeyError("missing")
    got = rows(home)
    assert [(r[0], r[4]) for r in got] == [("session.start", "error"), ("error", "error"), ("session.end", "error")]
    assert got[0][6]["session.outcome"] == "error" and got[0][6]["error.type"] == "KeyError"
    assert got[1][6] == {"session.id": s.session_id, "error.type": "KeyError", "error.message": "'missing'",
                         "error.recovered": False}
    assert got[2][6]["session.outcome"] == "error" and got[2][6]["session.errors"] == 1
    assert [c[:3] for c in obs.calls] == [("session_start", s.session_id, {
        "session.id": s.session_id, "session.name": "crash", "workspace.path": str(home.parent)}),
        ("session_end", s.session_id, "error")]


def test_async_session_cancelled_and_tool_call_outside_a_session(home: Path) -> None:
    obs = observe()

    async def agent() -> None:
        async with ats.session("background") as s:
            async with ats.tool_call("search", version="0.3", arguments={"q": "x"}) as t:
                assert t.session_id == s.session_id
                t.result = ["hit"]
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(agent())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    with ats.tool_call("lint") as t:
        assert t.session_id is None
    got = rows(home)
    assert [(r[0], r[4]) for r in got] == [("session.start", "error"), ("tool.execute", "ok"),
                                           ("session.end", "ok"), ("tool.execute", "ok")]
    assert got[0][6]["session.outcome"] == "cancelled" and got[0][6]["error.type"] == "CancelledError"
    assert got[2][6]["session.outcome"] == "cancelled" and got[2][6]["session.errors"] == 0
    assert got[3][3] is None and got[3][5] != got[0][5], "a tool call outside a session is its own trace"
    assert "session.id" not in got[3][6]
    assert [c[:4] for c in obs.calls if c[0].startswith("tool")] == [
        ("tool_before", "search", {"q": "x"}, got[0][6]["session.id"]),
        ("tool_after", "search", ["hit"], None),
        ("tool_before", "lint", {}, None),
        ("tool_after", "lint", None, None),
    ]
    assert obs.calls[-3][0] == "session_end" and obs.calls[-3][2] == "cancelled"


def test_a_failing_hook_is_counted_and_the_session_runs_on(home: Path) -> None:
    class Broken:
        @hookimpl
        def ats_session_start(self, session: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_tool_execute_after(self, call: Any) -> None:
            raise RuntimeError("plugin bug")

    rt = _runtime.current()
    assert rt is not None
    before = dict(rt.errors.counts)
    rt.plugins.register(Broken(), "broken")
    with ats.session("s") as s:
        with s.tool("t") as t:
            t.result = 1
    assert [r[0] for r in rows(home)] == ["session.start", "tool.execute", "session.end"]
    for where in ("hook:ats_session_start", "hook:ats_tool_execute_after"):
        assert rt.errors.counts.get(where, 0) == before.get(where, 0) + 1


def test_before_init_nothing_is_recorded_and_the_block_runs() -> None:
    assert _runtime.current() is None
    with ats.session("offline", x=1) as s:
        s.decision("go")
        s.error("soft failure")
        with s.tool("t", track=None) as t:
            t.result = 3
    assert (s.outcome, s.tool_calls, s.decisions, s.errors) == ("ok", 1, 1, 1)


def test_bad_outcome_and_contributor_are_clear_errors() -> None:
    s = ats.session("x")
    with pytest.raises(ValueError, match="session outcome 'done' is not one of ok, error, cancelled"):
        s.set_outcome("done")
    with pytest.raises(ValueError, match="contributor 'bot' is not one of human, ai, mixed, unknown"):
        ats.tool_call("edit", track=os.getcwd(), contributor="bot")
