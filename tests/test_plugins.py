"""Plugin host: hook specifications, entry-point loading, allow/deny lists, tracing, facade."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

import ats
from ats import hookimpl, hookspecs, instrumentation
from ats.instrumentation import Instrumentor, instrumentation_errors
from ats.plugins import PluginHost, PluginStatus

TESTS = Path(__file__).resolve().parent

HOOKS = sorted(
    name for name, obj in vars(hookspecs).items() if name.startswith("ats_") and callable(obj)
)


@pytest.fixture(autouse=True)
def _clean_error_counts() -> Iterator[None]:
    instrumentation._reset_instrumentation_errors()
    yield
    instrumentation._reset_instrumentation_errors()


# --------------------------------------------------------------------------- specs


def test_hook_names() -> None:
    assert HOOKS == [
        "ats_configure",
        "ats_instrumentors",
        "ats_process_batch",
        "ats_register_event_families",
        "ats_session_end",
        "ats_session_start",
        "ats_shutdown",
        "ats_tool_execute_after",
        "ats_tool_execute_before",
    ]
    assert PluginHost().hook_names() == HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented(name: str) -> None:
    """Fails when a hook specification lacks a docstring or a :param: line for a parameter."""
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec)
    assert doc, f"{name} has no docstring"
    for param in inspect.signature(spec).parameters:
        assert f":param {param}:" in doc, f"{name} does not document parameter {param!r}"
    if inspect.signature(spec).return_annotation not in ("None", None):
        assert ":return:" in doc, f"{name} does not document its return value"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_exercised_by_a_test(name: str) -> None:
    """Fails when no test implements a hook (and so exercises it through the host)."""
    sources = "".join(
        p.read_text(encoding="utf-8")
        for p in [*TESTS.glob("test_*.py"), *TESTS.glob("plugins/*/*/*.py")]
    )
    assert re.search(rf"def {name}\(", sources), f"no test implements {name}"


def test_hookspec_options() -> None:
    historic = {n for n in HOOKS if getattr(hookspecs, n).ats_spec["historic"]}
    firstresult = {n for n in HOOKS if getattr(hookspecs, n).ats_spec["firstresult"]}
    assert historic == {"ats_configure", "ats_register_event_families"}
    assert firstresult == set()


def test_hookimpl_is_exported_from_ats() -> None:
    assert "hookimpl" in ats.__all__
    assert ats.hookimpl is hookimpl

    @hookimpl(tryfirst=True)
    def ats_shutdown() -> None:
        pass

    assert ats_shutdown.ats_impl["tryfirst"] is True  # type: ignore[attr-defined]
    assert repr(hookimpl) == "<HookimplMarker 'ats'>"


# --------------------------------------------------------------------------- facade


class Recorder:
    """Implements every hook and records each call."""

    def __init__(self, instrumentors: list[Any] | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._instrumentors = instrumentors or []

    @hookimpl
    def ats_configure(self, config: Any) -> None:
        self.calls.append(("ats_configure", {"config": config}))

    @hookimpl
    def ats_register_event_families(self, registry: Any) -> None:
        registry.register({"family": "example", "events": ["example.ping"]})
        self.calls.append(("ats_register_event_families", {"registry": registry}))

    @hookimpl
    def ats_instrumentors(self) -> list[Any]:
        self.calls.append(("ats_instrumentors", {}))
        return self._instrumentors

    @hookimpl
    def ats_session_start(self, session: Any) -> None:
        self.calls.append(("ats_session_start", {"session": session}))

    @hookimpl
    def ats_session_end(self, session: Any, outcome: str) -> None:
        self.calls.append(("ats_session_end", {"session": session, "outcome": outcome}))

    @hookimpl
    def ats_tool_execute_before(self, call: Any) -> None:
        self.calls.append(("ats_tool_execute_before", {"call": call}))

    @hookimpl
    def ats_tool_execute_after(
        self, call: Any, result: object, error: BaseException | None, duration_ns: int
    ) -> None:
        self.calls.append(
            (
                "ats_tool_execute_after",
                {"call": call, "result": result, "error": error, "duration_ns": duration_ns},
            )
        )

    @hookimpl
    def ats_process_batch(self, records: Any) -> None:
        self.calls.append(("ats_process_batch", {"records": records}))

    @hookimpl
    def ats_shutdown(self) -> None:
        self.calls.append(("ats_shutdown", {}))


class Session:
    session_id = "s-1"
    attributes = {"workspace": "w"}


class Call:
    name = "read_file"
    arguments = {"path": "a.txt"}
    session_id = "s-1"


class Registry:
    def __init__(self) -> None:
        self.families: list[Any] = []

    def register(self, family: Any) -> None:
        self.families.append(family)


class NoopInstrumentor(Instrumentor):
    name = "noop"
    target_modules = ()

    def _patch(self, module: types.ModuleType) -> None:
        pass

    def _unpatch(self, module: types.ModuleType) -> None:
        pass


def test_every_facade_method_calls_its_hook() -> None:
    host = PluginHost()
    inst = NoopInstrumentor()
    rec = Recorder([inst])
    assert host.register(rec, "recorder") is True
    assert host.check_pending() == []
    config = object()
    registry = Registry()
    session, call, error = Session(), Call(), ValueError("x")
    records = [{"name": "driver.query"}]

    host.configure(config)
    host.register_event_families(registry)
    assert host.instrumentors() == [inst]
    host.session_start(session)
    host.tool_execute_before(call)
    host.tool_execute_after(call, None, error, 1500)
    host.session_end(session, "ok")
    host.process_batch(records)
    host.shutdown()

    assert rec.calls == [
        ("ats_configure", {"config": config}),
        ("ats_register_event_families", {"registry": registry}),
        ("ats_instrumentors", {}),
        ("ats_session_start", {"session": session}),
        ("ats_tool_execute_before", {"call": call}),
        (
            "ats_tool_execute_after",
            {"call": call, "result": None, "error": error, "duration_ns": 1500},
        ),
        ("ats_session_end", {"session": session, "outcome": "ok"}),
        ("ats_process_batch", {"records": records}),
        ("ats_shutdown", {}),
    ]
    assert registry.families == [{"family": "example", "events": ["example.ping"]}]
    assert instrumentation_errors() == {}


def test_historic_hooks_replay_for_late_plugins() -> None:
    host = PluginHost()
    config, registry = object(), Registry()
    host.configure(config)
    host.register_event_families(registry)
    late = Recorder()
    host.register(late, "late")
    assert late.calls == [
        ("ats_configure", {"config": config}),
        ("ats_register_event_families", {"registry": registry}),
    ]
    assert len(registry.families) == 1


def test_instrumentors_flattens_and_drops_non_instrumentors() -> None:
    host = PluginHost()
    a, b = NoopInstrumentor(), NoopInstrumentor()
    host.register(Recorder([a]), "one")
    host.register(Recorder([b, "not an instrumentor"]), "two")  # type: ignore[list-item]
    found = host.instrumentors()
    # pluggy calls the last registered plugin first
    assert found == [b, a]
    assert instrumentation_errors() == {"hook:ats_instrumentors": 1}


def test_hook_errors_are_counted_never_raised() -> None:
    class Faulty:
        @hookimpl
        def ats_tool_execute_after(self, call: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_instrumentors(self) -> list[Any]:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_configure(self, config: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_session_start(self, session: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_session_end(self, session: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_tool_execute_before(self, call: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_process_batch(self, records: Any) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_shutdown(self) -> None:
            raise RuntimeError("plugin bug")

        @hookimpl
        def ats_register_event_families(self, registry: Any) -> None:
            raise RuntimeError("plugin bug")

    host = PluginHost()
    host.register(Faulty(), "faulty")
    host.configure(object())
    host.register_event_families(Registry())
    assert host.instrumentors() == []
    host.session_start(Session())
    host.tool_execute_before(Call())
    host.tool_execute_after(Call(), 1, None, 10)
    host.session_end(Session(), "error")
    host.process_batch([])
    host.shutdown()
    assert instrumentation_errors() == {f"hook:{name}": 1 for name in HOOKS}


def test_late_plugin_failing_in_historic_hook_is_skipped() -> None:
    class FailsOnConfigure:
        @hookimpl
        def ats_configure(self, config: Any) -> None:
            raise ValueError("bad config for me")

    host = PluginHost()
    host.configure(object())
    plugin = FailsOnConfigure()
    assert host.register(plugin, "late-bad") is False
    assert not host.manager.is_registered(plugin)
    assert host.status() == [
        PluginStatus(
            "late-bad", None, None, "skipped", "registration failed: ValueError: bad config for me"
        )
    ]


def test_process_batch_without_listeners_is_free() -> None:
    host = PluginHost()
    host.process_batch([{"x": 1}])  # no implementation: not even a pluggy call
    assert instrumentation_errors() == {}


def test_check_pending_skips_a_misspelled_hookimpl() -> None:
    class Misspelled:
        @hookimpl
        def ats_sesion_start(self, session: Any) -> None:
            pass

        @hookimpl
        def ats_shutdown(self) -> None:
            pass

    class Optional:
        @hookimpl(optionalhook=True)
        def ats_future_hook(self) -> None:
            pass

    host = PluginHost()
    host.register(Misspelled(), "typo")
    host.register(Optional(), "optional")
    assert host.check_pending() == ["typo"]
    assert host.status() == [
        PluginStatus("optional", None, None, "active"),
        PluginStatus(
            "typo",
            None,
            None,
            "skipped",
            "unknown hook 'ats_sesion_start' (did you mean 'ats_session_start'?)",
        ),
    ]
    assert host.manager.get_plugin("typo") is None
    host.manager.check_pending()  # pluggy agrees nothing is pending any more


def test_register_rejects_bad_signature() -> None:
    class BadArgs:
        @hookimpl
        def ats_shutdown(self, unexpected: Any) -> None:
            pass

    host = PluginHost()
    assert host.register(BadArgs(), "bad") is False
    (status,) = host.status()
    assert status.status == "skipped"
    assert status.reason is not None
    assert status.reason.startswith("registration failed: PluginValidationError:")


def test_unregister_and_blocked() -> None:
    host = PluginHost()
    rec = Recorder()
    host.register(rec, "rec")
    host.unregister("rec")
    assert host.status() == []
    host.shutdown()
    assert rec.calls == []
    host.manager.set_blocked("blocked")
    assert host.register(Recorder(), "blocked") is False
    assert host.status() == [PluginStatus("blocked", None, None, "skipped", "blocked")]


def test_status_row_as_dict() -> None:
    row = PluginStatus("sqlite3", "ats-sqlite3", "0.1.0", "active")
    assert row.as_dict() == {
        "name": "sqlite3",
        "distribution": "ats-sqlite3",
        "version": "0.1.0",
        "status": "active",
        "reason": None,
    }
    assert repr(row) == (
        "PluginStatus(name='sqlite3', distribution='ats-sqlite3', version='0.1.0',"
        " status='active', reason=None)"
    )
    assert row != PluginStatus("sqlite3", "ats-sqlite3", "0.1.0", "skipped", "x")


# --------------------------------------------------------------------------- entry points


def make_distribution(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[ats]", *(f"{name} = {target}" for name, target in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


GOOD_PLUGIN = """
from ats import hookimpl
calls = []

@hookimpl
def ats_session_start(session):
    calls.append(session.session_id)
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path holding four fake distributions with `ats` entry points."""
    (tmp_path / "good_plugin.py").write_text(textwrap.dedent(GOOD_PLUGIN))
    (tmp_path / "broken_plugin.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "typo_plugin.py").write_text(
        "from ats import hookimpl\n@hookimpl\ndef ats_shutdwn():\n    pass\n"
    )
    (tmp_path / "other_plugin.py").write_text(
        "from ats import hookimpl\nfired = []\n@hookimpl\ndef ats_shutdown():\n"
        "    fired.append(1)\n"
    )
    make_distribution(tmp_path, "ats-good", "1.2.3", {"good": "good_plugin"})
    make_distribution(tmp_path, "ats-broken", "0.1", {"broken": "broken_plugin"})
    make_distribution(tmp_path, "ats-typo", "2.0", {"typo": "typo_plugin"})
    make_distribution(tmp_path, "ats-other", "3.0", {"other": "other_plugin"})
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("good_plugin", "broken_plugin", "typo_plugin", "other_plugin"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


OURS = {"good", "broken", "typo", "other"}


def ours(statuses: list[PluginStatus]) -> list[PluginStatus]:
    # Other distributions in the environment (ats-sqlite3, ...) also have `ats` entry points.
    return [s for s in statuses if s.name in OURS]


def test_load_registers_entry_points_and_skips_failures(plugin_site: Path) -> None:
    host = PluginHost()
    statuses = ours(host.load(disabled=(), allowed=None, trace_hooks=False))
    assert statuses == [
        PluginStatus(
            "broken",
            "ats-broken",
            "0.1",
            "skipped",
            "import failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
        ),
        PluginStatus("good", "ats-good", "1.2.3", "active"),
        PluginStatus("other", "ats-other", "3.0", "active"),
        PluginStatus(
            "typo",
            "ats-typo",
            "2.0",
            "skipped",
            "unknown hook 'ats_shutdwn' (did you mean 'ats_shutdown'?)",
        ),
    ]
    host.session_start(Session())
    host.shutdown()
    assert sys.modules["good_plugin"].calls == ["s-1"]
    assert sys.modules["other_plugin"].fired == [1]


def test_disabled_plugins_are_not_even_imported(plugin_site: Path) -> None:
    host = PluginHost()
    # by entry-point name and by distribution name
    statuses = ours(host.load(disabled=["good", "ats-other"], allowed=None, trace_hooks=False))
    by_name = {s.name: (s.status, s.reason) for s in statuses}
    assert by_name["good"] == ("skipped", "disabled by plugins.disabled")
    assert by_name["other"] == ("skipped", "disabled by plugins.disabled")
    assert "good_plugin" not in sys.modules
    assert "other_plugin" not in sys.modules


def test_allow_list_loads_only_named_plugins(plugin_site: Path) -> None:
    host = PluginHost()
    statuses = ours(host.load(disabled=(), allowed={"ats-good"}, trace_hooks=False))
    assert [(s.name, s.status, s.reason) for s in statuses] == [
        ("broken", "skipped", "not in plugins.allowed"),
        ("good", "active", None),
        ("other", "skipped", "not in plugins.allowed"),
        ("typo", "skipped", "not in plugins.allowed"),
    ]
    assert "broken_plugin" not in sys.modules


def test_empty_allow_list_loads_nothing(plugin_site: Path) -> None:
    host = PluginHost()
    statuses = host.load(disabled=(), allowed=[], trace_hooks=False)
    assert statuses and all(s.status == "skipped" for s in statuses)
    assert host.manager.list_name_plugin() == []


def test_disabled_wins_over_allowed(plugin_site: Path) -> None:
    host = PluginHost()
    statuses = ours(host.load(disabled={"good"}, allowed={"good"}, trace_hooks=False))
    assert {s.name: s.reason for s in statuses}["good"] == "disabled by plugins.disabled"


def test_same_distribution_found_twice_is_loaded_once(
    plugin_site: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = tmp_path_factory.mktemp("again")
    make_distribution(again, "ats-good", "1.2.3", {"good": "good_plugin"})
    make_distribution(again, "ats-impostor", "9.9", {"other": "other_plugin"})
    monkeypatch.syspath_prepend(str(again))
    host = PluginHost()
    statuses = ours(host.load(allowed={"good", "other"}))
    rows = [(s.name, s.distribution, s.status, s.reason) for s in statuses]
    assert rows.count(("good", "ats-good", "active", None)) == 1
    assert ("other", "ats-impostor", "active", None) in rows
    assert ("other", "ats-other", "skipped", "name 'other' already taken by ats-impostor") in rows


def test_trace_hooks_writes_each_call_to_stderr(
    plugin_site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = PluginHost()
    host.load(allowed={"good"}, trace_hooks=True)
    host.session_start(Session())
    err = capsys.readouterr().err
    assert "ats_session_start [hook]" in err
    assert "session: <" in err
    assert "finish ats_session_start --> [] [hook]" in err
    host.disable_tracing()
    host.session_start(Session())
    assert capsys.readouterr().err == ""


def test_pluggy_manager_project_name() -> None:
    host = PluginHost()
    assert isinstance(host.manager, pluggy.PluginManager)
    assert host.manager.project_name == "ats"


def test_entry_point_scan_matches_importlib_metadata(plugin_site: Path) -> None:
    from importlib import metadata

    from ats._entry_points import entry_points

    for group in ("ats", "console_scripts", "pytest11"):
        # The scan drops an extras marker (``mcp.cli:app [cli]``, from mcp): it does not change what loads.
        expected = sorted((ep.name, ep.value.split("[", 1)[0].strip(), ep.dist.metadata["Name"] if ep.dist else None, ep.dist.version if ep.dist else None)
                          for ep in metadata.entry_points(group=group))
        got = sorted((ep.name, ep.value, ep.distribution, ep.version) for ep in entry_points(group))
        assert got == expected, group
    assert {ep.name for ep in entry_points("ats")} >= OURS | {"sqlite3"}


def test_entry_point_scan_first_distribution_on_the_path_wins(tmp_path: Path) -> None:
    from ats._entry_points import entry_points

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    make_distribution(first, "ats-dup", "2.0", {"dup": "json:loads"})
    make_distribution(second, "ats_dup", "1.0", {"dup": "json:dumps", "extra": "json"})
    (first / "ats_dup-2.0.dist-info" / "entry_points.txt").write_text(
        "# comment\n[console_scripts]\nx = y\n\n[ats]\ndup = json:loads [fast]\n")
    [ep] = entry_points("ats", [str(first), str(second), str(tmp_path / "missing")])
    assert (ep.name, ep.value, ep.distribution, ep.version) == ("dup", "json:loads", "ats-dup", "2.0")
    import json

    assert ep.load() is json.loads


BILLING_PLUGIN = """
from ats import hookimpl
from ats.registry import EventFamily

@hookimpl
def ats_register_event_families(registry):
    registry.register(EventFamily(
        "billing", ("billing.invoice",),
        {"type": "object", "properties": {"amount_cents": {"type": "integer"}}},
        "S1", "local_only", "30d", "ats-billing", "invoices issued"))
"""


def test_a_family_a_plugin_registers_at_start_up_accepts_its_events(tmp_path: Path) -> None:
    import json
    import os
    import subprocess

    import store_reader

    site = tmp_path / "site"
    site.mkdir()
    (site / "billing_plugin.py").write_text(textwrap.dedent(BILLING_PLUGIN))
    make_distribution(site, "ats-billing", "0.3", {"billing": "billing_plugin"})
    program = textwrap.dedent("""
        import json, ats
        rt = ats.init()
        with ats.span("billing.invoice", amount_cents=1250):
            ats.emit("billing.invoice", amount_cents=1250)
        ats.emit("billing.refund.issued", amount_cents=5)  # the family owns every event under it
        ats.emit("invoicing.sent")  # no family: rejected
        ats.flush(10.0)
        print(json.dumps([rt.registry.rejections(), [f.owner for f in rt.registry.families() if f.family == "billing"]]))
        ats.shutdown(10.0)
    """)
    import ats as installed

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    env.update(ATS_HOME=str(tmp_path / ".ats"),
               PYTHONPATH=os.pathsep.join([str(site), str(Path(installed.__file__).resolve().parent.parent)]))

    def run(**extra: str) -> list[Any]:
        out = subprocess.run([sys.executable, "-c", program], env={**env, **extra}, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return list(json.loads(out.stdout))

    # Without the plugin its events are not ATS's to record.
    assert run(ATS_DISABLED_PLUGINS="billing", ATS_HOME=str(tmp_path / "without")) == [
        {"billing.invoice": 2, "billing.refund.issued": 1, "invoicing.sent": 1}, []]
    assert run() == [{"invoicing.sent": 1}, ["ats-billing"]]
    db = store_reader.connect(tmp_path / ".ats" / "ats.db")
    assert db.execute("SELECT name, attributes FROM spans_v").fetchall() == [
        ("billing.invoice", '{"amount_cents":1250}')]
    assert db.execute("SELECT event, attributes FROM logs_v ORDER BY ts_ns").fetchall() == [
        ("billing.invoice", '{"amount_cents":1250}'), ("billing.refund.issued", '{"amount_cents":5}')]
