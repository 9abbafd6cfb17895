"""Agent Trace attribution end to end, in a temporary git repository: an agent tool edits two
files inside ``track``, a human edits before and after it; the exported Agent Trace records
validate against the specification's schema and ``ats attribution FILE`` names each line's
contributor."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import ats
import ats.attribution
from ats.attribution import changed_ranges, content_hash, normalize_model_id
from ats.cli import main

import store_reader

SCHEMA_FILE = Path(ats.__file__).parent / "schemas" / "agent-trace-0.1.0.json"
MODEL = "anthropic/claude-sonnet-4-20250514"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=Dev", "-c", "user.email=dev@example.com",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Scenario:
    home: Path
    repo: Path
    base: str
    trace_id: str
    tool_span: str
    session_id: str
    record: dict[str, Any]


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenario]:
    monkeypatch.chdir(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("def main():\n    return 1\n")
    (repo / "util.py").write_text("A = 1\nB = 2\nC = 3\n")
    (repo / ".gitignore").write_text("build/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    rt = ats.init(**{"home": str(tmp_path / ".ats"), "tenant": "acme", "metrics.interval_ms": 3_600_000})
    assert rt is not None
    try:
        # A human edit before the agent runs: the snapshot must not attribute it to the agent.
        (repo / "util.py").write_text("A = 100\nB = 2\nC = 3\n")
        with ats.session("refactor") as s:
            with s.tool("edit_file", version="1.4.0", track=repo, contributor="ai",
                        model_id="claude-sonnet-4-20250514") as t:
                (repo / "app.py").write_text("import sys\n\ndef main():\n    return 2\n")
                (repo / "util.py").write_text("A = 100\nB = 20\nC = 3\nD = 4\n")
                (repo / "build").mkdir()
                (repo / "build" / "out.txt").write_text("ignored by .gitignore\n")
        assert t.tracker is not None and t.tracker.record is not None
        record = t.tracker.record
        git(repo, "add", "app.py", "util.py")
        git(repo, "commit", "-q", "-m", "agent work")
        # A human edit after the agent, not committed.
        with (repo / "app.py").open("a") as f:
            f.write("main()\n")
        assert ats.flush(5.0)
        db = store_reader.connect(tmp_path / ".ats" / "ats.db")
        [(trace_id,)] = db.execute("SELECT trace_id FROM spans_v WHERE name = 'session.start'").fetchall()
        [(tool_span,)] = db.execute("SELECT span_id FROM spans_v WHERE name = 'tool.execute'").fetchall()
        db.close()
        yield Scenario(tmp_path / ".ats", repo, base, trace_id, tool_span, s.session_id, record)
    finally:
        ats.shutdown(5.0)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def expected_record(sc: Scenario) -> dict[str, Any]:
    ai = {"type": "ai", "model_id": MODEL}
    return {
        "version": "0.1.0",
        "id": sc.record["id"],
        "timestamp": sc.record["timestamp"],
        "vcs": {"type": "git", "revision": sc.base},
        "tool": {"name": "edit_file", "version": "1.4.0"},
        "files": [
            {"path": "app.py", "conversations": [{"contributor": ai, "ranges": [
                {"start_line": 1, "end_line": 2, "content_hash": sha("import sys\n")},
                {"start_line": 4, "end_line": 4, "content_hash": sha("    return 2")},
            ]}]},
            {"path": "util.py", "conversations": [{"contributor": ai, "ranges": [
                {"start_line": 2, "end_line": 2, "content_hash": sha("B = 20")},
                {"start_line": 4, "end_line": 4, "content_hash": sha("D = 4")},
            ]}]},
        ],
        "metadata": {"ats": {"session_id": sc.session_id, "trace_id": sc.trace_id, "span_id": sc.tool_span}},
    }


def test_export_agent_trace_records_validate_against_the_schema(
        scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "agent-trace.jsonl"
    code, out, err = run(capsys, "trace", "export", scenario.trace_id[:8], "--format", "agent-trace",
                         "--output", str(out_file), "--home", str(scenario.home))
    assert (code, err) == (0, "")
    assert out == f"exported 1 Agent Trace record of trace {scenario.trace_id} to {out_file} (agent-trace)\n"
    lines = out_file.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    v = validator()
    for rec in records:
        assert sorted(e.message for e in v.iter_errors(rec)) == []
    assert records == [expected_record(scenario)]
    # The in-memory record of the tracker is the same record, without the store's span link.
    assert scenario.record["metadata"] == {"ats": {"session_id": scenario.session_id}}
    assert {k: v for k, v in records[0].items() if k != "metadata"} == {
        k: v for k, v in scenario.record.items() if k != "metadata"}
    assert scenario.record["timestamp"].endswith("Z") and len(scenario.record["timestamp"]) == 24


def test_attribution_names_the_contributor_of_each_line(
        scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(scenario.home)
    code, out, err = run(capsys, "attribution", str(scenario.repo / "app.py"), "--home", home)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"1  ai {MODEL}  import sys",
        f"2  ai {MODEL}",
        "3  unknown                                def main():",
        f"4  ai {MODEL}      return 2",
        "5  human                                  main()",
    ]
    code, out, err = run(capsys, "attribution", str(scenario.repo / "util.py"), "--home", home)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "1  human                                  A = 100",
        f"2  ai {MODEL}  B = 20",
        "3  unknown                                C = 3",
        f"4  ai {MODEL}  D = 4",
    ]
    code, out, _ = run(capsys, "attribution", "--json", str(scenario.repo / "util.py"), "--home", home)
    agent_commit = git(scenario.repo, "rev-parse", "HEAD")
    ai = {"type": "ai", "model_id": MODEL}
    rid = scenario.record["id"]
    assert (code, json.loads(out)) == (0, [
        {"line": 1, "contributor": {"type": "human"}, "commit": agent_commit, "attribution_id": None},
        {"line": 2, "contributor": ai, "commit": agent_commit, "attribution_id": rid},
        {"line": 3, "contributor": {"type": "unknown"}, "commit": scenario.base, "attribution_id": None},
        {"line": 4, "contributor": ai, "commit": agent_commit, "attribution_id": rid},
    ])


def test_attribution_follows_lines_that_moved(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    # A human inserts two lines above the agent's: its lines still match by content.
    text = (scenario.repo / "util.py").read_text()
    (scenario.repo / "util.py").write_text("# header\n# more\n" + text)
    code, out, _ = run(capsys, "attribution", str(scenario.repo / "util.py"), "--home", str(scenario.home))
    assert code == 0
    assert [line.split("  ")[1].strip() for line in out.splitlines()] == [
        "human", "human", "human", f"ai {MODEL}", "unknown", f"ai {MODEL}"]


def test_trace_show_attribution(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "trace", "show", scenario.trace_id, "--attribution", "--home", str(scenario.home))
    assert (code, err) == (0, "")
    rid, rev = scenario.record["id"], scenario.base[:12]
    assert out.splitlines() == [
        "FILE     LINES  CONTRIBUTOR  MODEL                               TOOL             REVISION      RECORD",
        f"app.py   1-2    ai           {MODEL}  edit_file@1.4.0  {rev}  {rid}",
        f"app.py   4-4    ai           {MODEL}  edit_file@1.4.0  {rev}  {rid}",
        f"util.py  2-2    ai           {MODEL}  edit_file@1.4.0  {rev}  {rid}",
        f"util.py  4-4    ai           {MODEL}  edit_file@1.4.0  {rev}  {rid}",
    ]
    code, out, _ = run(capsys, "trace", "show", scenario.trace_id, "--attribution", "--json",
                       "--home", str(scenario.home))
    assert (code, json.loads(out)) == (0, [expected_record(scenario)])


def test_attribution_outside_a_work_tree_is_a_clear_error(
        scenario: Scenario, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    loose = tmp_path / "loose.txt"
    loose.write_text("x\n")
    code, out, err = run(capsys, "attribution", str(loose), "--home", str(scenario.home))
    assert (code, out) == (1, "")
    assert err.startswith(f"ats: {loose} is not inside a git work tree (git rev-parse:")


def test_track_outside_git_counts_and_runs_the_block(tmp_path: Path) -> None:
    before = ats._runtime.ERRORS.counts.get("attribution.snapshot", 0)
    with ats.attribution.track(tmp_path, tool="x") as tracker:
        (tmp_path / "f.txt").write_text("hello\n")
    assert tracker.record is None
    assert ats._runtime.ERRORS.counts["attribution.snapshot"] == before + 1


def test_schema_rejects_what_the_specification_rejects() -> None:
    v = validator()
    minimal = {"version": "0.1.0", "id": "550e8400-e29b-41d4-a716-446655440000",
               "timestamp": "2026-01-23T14:30:00Z",
               "files": [{"path": "a.py", "conversations": [{"contributor": {"type": "ai"},
                                                              "ranges": [{"start_line": 1, "end_line": 50}]}]}]}
    assert list(v.iter_errors(minimal)) == []
    bad = [
        {**minimal, "version": "1.0"},
        {**minimal, "id": "not-a-uuid"},
        {**minimal, "extra": 1},
        {**minimal, "vcs": {"type": "cvs", "revision": "1"}},
        {**minimal, "files": [{"path": "a.py", "conversations": [{"contributor": {"type": "bot"}, "ranges": []}]}]},
        {**minimal, "files": [{"path": "a.py", "conversations": [{"ranges": [{"start_line": 0, "end_line": 1}]}]}]},
        {**minimal, "files": [{"path": "a.py", "conversations": [
            {"contributor": {"type": "ai", "model_id": "m" * 251}, "ranges": []}]}]},
    ]
    assert [len(list(v.iter_errors(b))) for b in bad] == [1] * len(bad)


def test_changed_ranges_and_model_ids() -> None:
    assert changed_ranges(["a", "b", "c"], ["a", "B", "c", "d", "e"]) == [
        ats.attribution.Range(2, 2, content_hash(["B"]), (hashlib.sha256(b"B").hexdigest()[:12],)),
        ats.attribution.Range(4, 5, content_hash(["d", "e"]),
                              tuple(hashlib.sha256(x).hexdigest()[:12] for x in (b"d", b"e"))),
    ]
    assert changed_ranges(["a", "b"], ["a"]) == []  # a deletion leaves no line to attribute
    assert [normalize_model_id(m) for m in ("claude-opus-4", "gpt-4o", "o3-mini", "gemini-2.0", "acme/x", "llama")] == [
        "anthropic/claude-opus-4", "openai/gpt-4o", "openai/o3-mini", "google/gemini-2.0", "acme/x", "llama"]
