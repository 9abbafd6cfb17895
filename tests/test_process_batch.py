"""``ats_process_batch``: the Python sink fed from the native hand-off queue on its own thread."""

from __future__ import annotations

import json

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ats
from ats import _runtime, hookimpl

import store_reader


class Collect:
    """A plugin that keeps every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.threads: set[str] = set()

    @hookimpl
    def ats_process_batch(self, records: Any) -> None:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(records))

    def records(self) -> list[dict[str, Any]]:
        return [r for b in self.batches for r in b]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / ".ats"
    ats.shutdown(5.0)


def start(home: Path, **overrides: Any) -> _runtime.Runtime:
    rt = ats.init(**{"home": str(home), "tenant": "acme", "metrics.interval_ms": 3_600_000, **overrides})
    assert rt is not None
    return rt


def store_spans(home: Path) -> list[tuple[str, str, str, dict[str, Any]]]:
    with _runtime.suppressed():  # the sqlite3 plugin would record these reads
        db = store_reader.connect(home / "ats.db")
        rows = db.execute("SELECT name, span_id, status, attributes FROM spans_v ORDER BY start_ns").fetchall()
        db.close()
    return [(n, s, st, json.loads(a)) for n, s, st, a in rows]


def test_no_drain_thread_without_a_batch_hook(home: Path) -> None:
    rt = start(home)
    assert rt.drain is None
    assert "ats-batch-drain" not in {t.name for t in threading.enumerate()}


def test_the_hook_receives_exactly_the_records_in_order(home: Path) -> None:
    rt = start(home)
    plugin = Collect()
    assert rt.plugins.register(plugin, "collect")
    assert rt.drain is not None
    for i in range(5):
        with ats.span("kernel.exec", step=i, label=f"s{i}", ratio=i / 4, last=i == 4):
            pass
    ats.emit("policy.deny", severity="warn", reason="residency")
    assert ats.flush(5.0)

    got = plugin.records()
    assert plugin.threads == {"ats-batch-drain"}
    assert [(r["kind"], r["evt"]) for r in got] == [("span", "kernel.exec.ok")] * 5 + [("log", "policy.deny")]
    assert [r["attributes"] for r in got[:5]] == [
        {"step": i, "label": f"s{i}", "ratio": i / 4, "last": i == 4} for i in range(5)
    ]
    assert got[5]["attributes"] == {"reason": "residency"} and got[5]["severity"] == 13
    assert {r["tenant"] for r in got} == {"acme"}
    # The same spans as the store, same ids, same attributes.
    stored = store_spans(home)
    assert [(s[1], s[3]) for s in stored] == [(r["span_id"], r["attributes"]) for r in got[:5]]
    for r in got[:5]:
        assert r["component"] and r["status"] == "ok" and r["end_ns"] >= r["start_ns"]
        assert len(r["trace_id"]) == 32 and "parent_span_id" not in r
    assert rt.drain.stats() == {"batches": len(plugin.batches), "records": 6, "hook_errors": 0}
    assert rt.pipeline.stats()["dropped"]["handoff_full"] == 0


def test_records_are_redacted_before_the_hook_and_its_own_spans_are_not_recorded(home: Path) -> None:
    rt = start(home)

    class Recording(Collect):
        @hookimpl
        def ats_process_batch(self, records: Any) -> None:
            super().ats_process_batch(records)
            with ats.span("kernel.hook"):  # suppressed on the drain thread: no feedback loop
                pass

    plugin = Recording()
    rt.plugins.register(plugin, "recording")
    with pytest.raises(ValueError):
        with ats.span("kernel.exec"):
            raise ValueError("login failed for dave@example.com")
    assert ats.flush(5.0)
    [rec] = plugin.records()
    assert rec["status"] == "error" and rec["attributes"]["exception.message"] == "login failed for [EMAIL]"
    assert [s[0] for s in store_spans(home)] == ["kernel.exec"]


def test_a_raising_hook_is_counted_and_the_store_is_unaffected(home: Path) -> None:
    rt = start(home)

    class Faulty:
        @hookimpl
        def ats_process_batch(self, records: Any) -> None:
            raise RuntimeError("plugin bug")

    rt.plugins.register(Faulty(), "faulty")
    assert rt.drain is not None
    for i in range(3):
        with ats.span("kernel.exec", step=i):
            pass
        assert ats.flush(5.0)
    stats = rt.drain.stats()
    assert stats["hook_errors"] == stats["batches"] == 3 and stats["records"] == 3
    assert rt.errors.counts["hook:ats_process_batch"] >= 3
    assert [s[3]["step"] for s in store_spans(home)] == [0, 1, 2]


def test_a_slow_hook_causes_counted_drops_not_blocking(home: Path) -> None:
    rt = start(home, **{"flush.handoff_max_records": 1, "flush.batch_max_records": 1, "flush.interval_ms": 1})
    entered, release = threading.Event(), threading.Event()
    seen: list[int] = []

    class Slow:
        @hookimpl
        def ats_process_batch(self, records: Any) -> None:
            entered.set()
            release.wait(30)
            seen.extend(r["attributes"]["step"] for r in records)

    rt.plugins.register(Slow(), "slow")
    with ats.span("kernel.exec", step=0):
        pass
    assert entered.wait(10), "the first batch reached the hook"
    # The hook is stuck; the program keeps recording at full speed (nothing waits for it).
    for i in range(1, 50):
        with ats.span("kernel.exec", step=i):
            pass
    assert rt.pipeline.flush(5.0)
    stats = rt.pipeline.stats()
    # One batch in the hook, one waiting in the queue (bound: 1 record), 48 dropped.
    assert stats["dropped"]["handoff_full"] == 48 and stats["handoff_queued"] == 1
    assert [s[3]["step"] for s in store_spans(home)] == list(range(50)), "the store keeps everything"
    with _runtime.suppressed():  # and counts the drops for `ats trace stats`
        db = store_reader.connect(home / "ats.db")
        assert db.execute("SELECT count FROM drops WHERE reason = 'handoff_full'").fetchall() == [(48,)]
        db.close()
    release.set()
    assert ats.flush(5.0)
    assert seen == [0, 1]
    assert rt.drain is not None and rt.drain.stats() == {"batches": 2, "records": 2, "hook_errors": 0}


def test_shutdown_hands_the_rest_to_the_hook_before_ats_shutdown(home: Path) -> None:
    rt = start(home, **{"flush.interval_ms": 60_000})
    order: list[str] = []

    class Ordered(Collect):
        @hookimpl
        def ats_process_batch(self, records: Any) -> None:
            order.extend(r["evt"] for r in records if r["kind"] == "span")

        @hookimpl
        def ats_shutdown(self) -> None:
            order.append("shutdown")

    rt.plugins.register(Ordered(), "ordered")
    for _ in range(3):
        with ats.span("kernel.exec"):
            pass
    assert ats.shutdown(5.0)
    assert order == ["kernel.exec.ok"] * 3 + ["shutdown"]
    assert not any(t.name == "ats-batch-drain" for t in threading.enumerate())


def test_pipeline_drain_api_times_out_and_ends_after_shutdown(tmp_path: Path) -> None:
    from ats import _native

    p = _native.Pipeline(store_path=None, flush_interval_ms=1)
    assert p.drain(0.01) is None  # nothing attached, nothing queued
    p.record_span("kernel.exec", "t", "0" * 31 + "1", 5, 0, 1, 2, 1)
    assert p.flush(5.0)  # flushed before attach: not kept
    p.attach_drain()
    p.record_span("kernel.exec", "t", "0" * 31 + "1", 6, 0, 1, 2, 1, {"k": "v"})
    assert p.flush(5.0)
    batch = p.drain(5.0)
    assert batch is not None and [(r["span_id"], r["attributes"]) for r in batch] == [("0000000000000006", {"k": "v"})]
    assert p.stats()["handoff_accepted"] == 1
    assert p.shutdown(5.0)
    assert p.drain(60.0) is None  # closed: returns at once


def test_a_forked_child_feeds_its_own_batches(home: Path, tmp_path: Path) -> None:
    import os

    rt = start(home)
    out = tmp_path / "child.json"

    class Dump:
        @hookimpl
        def ats_process_batch(self, records: Any) -> None:
            with out.open("a") as f:
                for r in records:
                    f.write(json.dumps([os.getpid(), r["evt"], r["attributes"]]) + "\n")

    rt.plugins.register(Dump(), "dump")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            with ats.span("kernel.exec", where="child"):
                pass
            code = 0 if ats.shutdown(5.0) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    with ats.span("kernel.exec", where="parent"):
        pass
    assert ats.flush(5.0)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [[pid, "kernel.exec.ok", {"where": "child"}], [os.getpid(), "kernel.exec.ok", {"where": "parent"}]]


BATCH_PLUGIN = """
import json, os
from ats import hookimpl

@hookimpl
def ats_process_batch(records):
    with open(os.environ["BATCH_OUT"], "a") as f:
        for r in records:
            if r["kind"] == "span":
                f.write(json.dumps([r["evt"], r["attributes"].get("db.statement")]) + "\\n")
"""


def test_an_installed_batch_plugin_under_ats_run_sees_the_programs_queries(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    info = site / "ats_batch_dump-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ats-batch-dump\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[ats]\nbatch-dump = batch_dump\n")
    (site / "batch_dump.py").write_text(BATCH_PLUGIN)
    out = tmp_path / "batches.jsonl"
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"), PYTHONPATH=str(site), BATCH_OUT=str(out))
    program = ("import sqlite3\nc = sqlite3.connect(':memory:')\n"
               "c.execute(\"SELECT 'secret-literal' WHERE 1 = 2\")\nc.close()\n")
    result = subprocess.run([str(Path(sys.executable).parent / "ats-run"), sys.executable, "-c", program],
                            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert got == [["driver.handshake.ok", None], ["driver.query.ok", "SELECT ? WHERE ? = ?"],
                   ["driver.close.ok", None]]
