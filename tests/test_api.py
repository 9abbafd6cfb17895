"""The public API end to end: ats.init → span/traced/emit/metrics → store."""

from __future__ import annotations

import asyncio
import os
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import ats
from ats.config import ConfigError

import store_reader


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    rt = ats.init(**{"home": str(tmp_path / ".ats"), "tenant": "acme", "metrics.interval_ms": 3_600_000})
    assert rt is not None
    yield tmp_path / ".ats"
    ats.shutdown(5.0)


def spans(home: Path) -> list[tuple[str, str, str | None, str, dict[str, object]]]:
    db = store_reader.connect(home / "ats.db")
    rows = db.execute("SELECT name, span_id, parent_id, status, attributes FROM spans_v ORDER BY start_ns, name")
    return [(n, s, p, st, json.loads(a)) for n, s, p, st, a in rows]


def test_nested_spans_exceptions_and_traced_functions(home: Path) -> None:
    @ats.traced
    def helper() -> int:
        return 7

    @ats.traced("udr.compile")
    async def compile_async() -> str:
        await asyncio.sleep(0)
        return "done"

    with pytest.raises(ZeroDivisionError):
        with ats.span("kernel.exec", rows=3) as outer:
            assert helper() == 7
            assert asyncio.run(compile_async()) == "done"
            with ThreadPoolExecutor(1) as pool:
                pool.submit(lambda: ats.span("kernel.retry").__enter__().__exit__(None, None, None)).result()
            1 / 0  # noqa: B018
    assert ats.flush(5.0)
    got = spans(home)
    by_name = {g[0]: g for g in got}
    assert set(by_name) == {"kernel.exec", "app.test_nested_spans_exceptions_and_traced_functions.<locals>.helper",
                            "udr.compile", "kernel.retry"}
    root = by_name["kernel.exec"]
    assert root[2] is None and root[3] == "error"
    assert root[4]["rows"] == 3 and root[4]["error.type"] == "ZeroDivisionError"
    assert root[4]["exception.message"] == "division by zero"
    for name in set(by_name) - {"kernel.exec"}:
        assert by_name[name][2] == root[1], f"{name} is a child of kernel.exec"
        assert by_name[name][3] == "ok"
    assert outer.context is not None and ats.current_span() is None


def test_exception_messages_are_scrubbed(home: Path) -> None:
    with pytest.raises(ValueError):
        with ats.span("kernel.exec"):
            raise ValueError("login failed for dave@example.com")
    ats.flush(5.0)
    [(_, _, _, _, attrs)] = spans(home)
    assert attrs["exception.message"] == "login failed for [EMAIL]"


def test_emit_and_unregistered_events_are_rejected_and_counted(home: Path) -> None:
    with ats.span("kernel.exec"):
        ats.emit("policy.deny", severity="warn", reason="residency", actor="user:analyst-42")
    with ats.span("nonsense.family"):
        pass
    ats.emit("made.up", body="x")
    ats.flush(5.0)
    assert [s[0] for s in spans(home)] == ["kernel.exec"]
    db = store_reader.connect(home / "ats.db")
    assert db.execute("SELECT event, severity, attributes FROM logs_v").fetchall() == [
        ("policy.deny", 13, '{"reason":"residency","actor":"user:analyst-42"}')]
    rt = ats._runtime.current()
    assert rt is not None and rt.registry is not None
    assert rt.registry.rejections() == {"nonsense.family": 1, "made.up": 1}


def test_metrics_api_reaches_the_store(home: Path) -> None:
    ats.metrics.counter("sqlx_policy_denies_total").add(2, {"reason": "residency"})
    # Names of this test's own: the registry is per process, and a name keeps its first unit and bounds.
    ats.metrics.gauge("app_queue_depth", "{job}").set(3, {"queue": "mail"})
    ats.metrics.gauge("app_queue_depth", "{job}").set(4, {"queue": "mail"})  # last value wins
    latency = ats.metrics.histogram("app_checkout_latency_ms", bounds=[1.0, 10.0, 100.0])
    for value in (0.5, 12.0, 40.0):
        latency.record(value, {"class": "L"})
    ats.shutdown(5.0)
    db = store_reader.connect(home / "ats.db")
    rows = db.execute("SELECT name, unit, kind, tenant, labels, value, histogram FROM metric_points"
                      " WHERE name IN ('sqlx_policy_denies_total', 'app_queue_depth', 'app_checkout_latency_ms')"
                      " ORDER BY name").fetchall()
    assert [r[:6] for r in rows] == [
        ("app_checkout_latency_ms", "ms", "histogram", "acme", '{"class":"L"}', 52.5),  # value: the sum
        ("app_queue_depth", "{job}", "gauge", "acme", '{"queue":"mail"}', 4.0),
        ("sqlx_policy_denies_total", "1", "counter", "acme", '{"reason":"residency"}', 2.0),
    ]
    histogram = json.loads(rows[0][6])
    assert (histogram["count"], histogram["sum"], histogram["min"], histogram["max"]) == (3, 52.5, 0.5, 40.0)
    assert (histogram["bounds"], histogram["counts"]) == ([1.0, 10.0, 100.0], [1, 0, 2, 0])


def test_init_is_idempotent_and_api_is_safe_without_it(tmp_path: Path) -> None:
    assert ats._runtime.current() is None
    with ats.span("kernel.exec"):  # no runtime: records nothing, raises nothing
        ats.emit("policy.deny")
    first = ats.init(**{"home": str(tmp_path)})
    assert ats.init(**{"home": "/elsewhere"}) is first
    assert ats.shutdown(5.0) and ats.shutdown(5.0)


def test_bad_configuration_fails_at_start_up_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ats.init(**{"home": str(tmp_path), "sampling.ratio": 1.5})
    assert "sampling.ratio" in str(info.value) and "1.5" in str(info.value)
    assert ats._runtime.current() is None
    assert ats.init(**{"home": str(tmp_path), "disabled": True}) is None


def test_reload_and_sighup_swap_in_new_sampling_without_losing_records(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os, signal, time, ats
        # As from a terminal: under nohup (as CI may run) SIGHUP arrives ignored and ATS leaves it.
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        ats.init()
        with ats.span("kernel.exec"):
            pass
        os.environ["ATS_SAMPLING_RATIO"] = "0"
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(2000):
            if ats._runtime.current().config.sampling.ratio == 0.0:
                break
            time.sleep(0.01)
        with ats.span("kernel.retry"):  # sampled out by the reloaded configuration
            pass
        os.environ["ATS_SAMPLING_RATIO"] = "2"
        assert ats.reload() is False  # invalid: old settings stay
        print(ats._runtime.current().config.sampling.ratio)
    """)
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"))
    env.pop("ATS_SAMPLING_RATIO", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0.0"
    assert "reload rejected: ats config: sampling.ratio = 2" in out.stderr
    db = store_reader.connect(tmp_path / ".ats" / "ats.db")
    assert [r[0] for r in db.execute("SELECT name FROM spans_v")] == ["kernel.exec"]
    del signal


def test_reload_applies_redaction_sinks_and_plugins_and_names_what_waits_for_a_restart(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import json, os, ats
        from ats import hookimpl
        seen = []
        class Watcher:
            @hookimpl
            def ats_configure(self, config):
                seen.append([[p.name for p in config.redaction.patterns], config.jsonl.enabled])
        rt = ats.init()
        rt.plugins.register(Watcher(), name="watcher")
        with ats.span("kernel.exec", note="order ORD-1234 shipped"):
            pass
        os.environ["ATS_REDACTION_PATTERNS"] = json.dumps(
            [{"name": "order", "regex": "ORD-[0-9]+", "marker": "[ORDER]"}])
        os.environ["ATS_JSONL_ENABLED"] = "true"
        os.environ["ATS_DISABLED_PLUGINS"] = "sqlite3"
        assert ats.reload() is True
        with ats.span("kernel.retry", note="order ORD-5678 shipped"):
            pass
        ats.shutdown(10.0)
        print(json.dumps(seen))
    """)
    home = tmp_path / ".ats"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    env["ATS_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # ats_configure: the start-up configuration (replayed at registration), then the reloaded one.
    assert json.loads(out.stdout) == [[[], False], [["order"], True]]
    assert out.stderr == "ats: reload: plugins.disabled take effect only at the next start\n"
    assert [(n, a["note"]) for n, _, _, _, a in spans(home)] == [
        ("kernel.exec", "order ORD-1234 shipped"), ("kernel.retry", "order [ORDER] shipped")]
    lines = [json.loads(line) for f in sorted(home.rglob("*.jsonl")) for line in f.read_text().splitlines()]
    assert [(r["evt"], r["attributes"]["note"]) for r in lines if r["kind"] == "span"] == [
        ("kernel.retry.ok", "order [ORDER] shipped")]


def test_sigterm_flushes_then_dies_of_the_signal(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys, time, ats
        ats.init()
        for i in range(50):
            with ats.span("kernel.exec", step=i):
                pass
        print("ready", flush=True)
        time.sleep(60)
    """)
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"), ATS_FLUSH_INTERVAL_MS="60000")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # the exit status the parent sees is unchanged
    db = store_reader.connect(tmp_path / ".ats" / "ats.db")
    assert db.execute("SELECT count(*) FROM spans_v WHERE name = 'kernel.exec'").fetchone() == (50,)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("claim", ["handler", "ignored"])
def test_a_signal_the_program_claimed_or_ignored_is_left_alone(tmp_path: Path, signame: str, claim: str) -> None:
    import subprocess
    import sys
    import textwrap

    # "ignored" is how a program started under nohup receives SIGHUP.
    script = textwrap.dedent(f"""
        import signal, ats
        mine = (lambda *_: None) if {claim!r} == "handler" else signal.SIG_IGN
        signal.signal(signal.{signame}, mine)
        ats.init()
        print(signal.getsignal(signal.{signame}) is mine)
    """)
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "True"), out.stderr
