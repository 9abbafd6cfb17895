"""Instrumentor base class: versions, lazy patching, idempotence, restoration, error guard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from ats import instrumentation
from ats.instrumentation import (
    Instrumentor,
    UnsupportedVersionWarning,
    count_error,
    guard,
    instrumentation_errors,
    parse_version,
    version_in_range,
)

import ats as _ats_for_path

# Where the *installed* ats lives (site-packages in CI, python/ in an editable install):
# subprocesses must import the built package, not the source tree.
ATS_ROOT = str(Path(_ats_for_path.__file__).resolve().parent.parent)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _clean_error_counts() -> Iterator[None]:
    instrumentation._reset_instrumentation_errors()
    yield
    instrumentation._reset_instrumentation_errors()


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.45.1", (3, 45, 1)),
        ("2", (2,)),
        ("v1.2", (1, 2)),
        ("2.0rc1", (2, 0)),
        ("1.2.dev3", (1, 2)),
        ("1.2.3+local", (1, 2, 3)),
        (" 10.0 ", (10, 0)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, ...]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "abc", ".1", "rc1"])
def test_parse_version_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a version"):
        parse_version(text)


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        ("3.5", ">=3.0,<4", True),
        ("4.0", ">=3.0,<4", False),
        ("3.0.0", ">=3.0,<4", True),
        ("2.99", ">=3.0,<4", False),
        ("3", "==3.0.0", True),
        ("3.1", "!=3.1", False),
        ("3.7.17", ">=3.7", True),
        ("3.6.9", ">=3.7", False),
        ("1.4.2", "==1.4.*", True),
        ("1.5.0", "==1.4.*", False),
        ("1.5.0", "!=1.4.*", True),
        ("2.2", "~=2.2", True),
        ("2.9", "~=2.2", True),
        ("3.0", "~=2.2", False),
        ("1.4.5", "~=1.4.2", True),
        ("1.5.0", "~=1.4.2", False),
        ("5.0", "", True),
        ("1.0", ">1.0", False),
        ("1.0.1", ">1.0", True),
        ("1.0", "<=1.0", True),
    ],
)
def test_version_in_range(version: str, spec: str, expected: bool) -> None:
    assert version_in_range(version, spec) is expected


@pytest.mark.parametrize("spec", ["3.0", "=>3", ">=x", "~=2", ">=3.*"])
def test_version_in_range_rejects_malformed(spec: str) -> None:
    with pytest.raises(ValueError):
        version_in_range("3.0", spec)


# --------------------------------------------------------------------------- instrumentor


def make_target(name: str, version: str = "1.2.0") -> types.ModuleType:
    module = types.ModuleType(name)
    module.__version__ = version  # type: ignore[attr-defined]

    def greet(who: str) -> str:
        return f"hello {who}"

    def fail() -> None:
        raise KeyError("boom")

    class Thing:
        def size(self) -> int:
            return 3

    module.greet = greet  # type: ignore[attr-defined]
    module.fail = fail  # type: ignore[attr-defined]
    Thing.__module__ = name
    module.Thing = Thing  # type: ignore[attr-defined]
    return module


class Greeter(Instrumentor):
    name = "greeter"
    target_modules = ("ats_test_target",)
    supported_versions = ">=1.0,<2"

    def __init__(self) -> None:
        super().__init__()
        self.patch_calls = 0
        self.unpatch_calls = 0
        self.seen: list[str] = []

    def _patch(self, module: types.ModuleType) -> None:
        self.patch_calls += 1
        original = module.greet
        seen = self.seen

        def greet(who: str) -> str:
            result: str = original(who)
            with guard("greeter.record"):
                seen.append(who)
            return result

        self.replace(module, "greet", greet)
        self.replace(module.Thing, "size", lambda self: 4)  # inherited? no: defined on Thing

    def _unpatch(self, module: types.ModuleType) -> None:
        self.unpatch_calls += 1
        self.restore(module)


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = make_target("ats_test_target")
    monkeypatch.setitem(sys.modules, "ats_test_target", module)
    return module


def test_instrument_patches_imported_module_and_is_idempotent(target: types.ModuleType) -> None:
    original_greet = target.greet
    original_size = target.Thing.__dict__["size"]
    inst = Greeter()
    assert inst.instrument() is True
    assert inst.instrument() is False
    assert inst.patch_calls == 1
    assert inst.is_instrumented
    assert inst.patched_modules == ("ats_test_target",)
    assert target.greet("ann") == "hello ann"
    assert inst.seen == ["ann"]
    assert target.Thing().size() == 4

    assert inst.uninstrument() is True
    assert inst.uninstrument() is False
    assert inst.unpatch_calls == 1
    assert target.greet is original_greet
    assert target.Thing.__dict__["size"] is original_size
    assert inst.patched_modules == ()
    # and again: instrument after uninstrument patches anew
    assert inst.instrument() is True
    assert inst.patch_calls == 2
    inst.uninstrument()
    assert target.greet is original_greet


def test_restore_deletes_an_attribute_that_was_inherited() -> None:
    class Base:
        def f(self) -> int:
            return 1

    class Child(Base):
        pass

    Child.__module__ = "ats_test_target"

    class Inst(Instrumentor):
        name = "inherit"
        target_modules = ()

        def _patch(self, module: types.ModuleType) -> None:
            pass

        def _unpatch(self, module: types.ModuleType) -> None:
            pass

    inst = Inst()
    inst.replace(Child, "f", lambda self: 2)
    assert Child().f() == 2
    assert inst.original(Child, "f") is Child.f  # nothing saved by value: current one
    inst.restore()
    assert "f" not in Child.__dict__
    assert Child().f() == 1


def test_original_returns_saved_value(target: types.ModuleType) -> None:
    original = target.greet
    inst = Greeter()
    inst.instrument()
    try:
        assert inst.original(target, "greet") is original
        assert target.greet is not original
    finally:
        inst.uninstrument()


def test_unsupported_version_warns_once_and_does_not_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = make_target("ats_test_target", version="2.5")
    monkeypatch.setitem(sys.modules, "ats_test_target", module)
    original = module.greet
    inst = Greeter()
    with pytest.warns(UnsupportedVersionWarning) as record:
        inst.instrument()
    assert len(record) == 1
    assert str(record[0].message) == (
        "ats: greeter instrumentation not applied: ats_test_target is version 2.5,"
        " supported >=1.0,<2"
    )
    assert module.greet is original
    assert inst.patch_calls == 0
    assert inst.patched_modules == ()
    # a second attempt (another instance, or after uninstrument) does not warn again
    inst.uninstrument()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inst.instrument() is True
        Greeter().instrument()
    assert module.greet is original
    inst.uninstrument()


def test_unknown_version_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    module = make_target("ats_test_target")
    del module.__version__
    monkeypatch.setitem(sys.modules, "ats_test_target", module)
    inst = Greeter()
    with pytest.warns(UnsupportedVersionWarning, match="is an unknown version"):
        inst.instrument()
    assert inst.patch_calls == 0
    inst.uninstrument()


def test_distribution_version_is_preferred(target: types.ModuleType) -> None:
    class ByDist(Greeter):
        name = "bydist"
        distribution = "pluggy"  # installed; its version is 1.x
        supported_versions = ">=1,<2"

    target.__version__ = "9.9"  # type: ignore[attr-defined]
    inst = ByDist()
    inst.instrument()
    assert inst.patch_calls == 1
    inst.uninstrument()


def test_patch_error_is_counted_and_partial_patch_undone(target: types.ModuleType) -> None:
    original = target.greet

    class Broken(Greeter):
        name = "broken"

        def _patch(self, module: types.ModuleType) -> None:
            self.replace(module, "greet", lambda who: "patched")
            raise RuntimeError("half way")

    inst = Broken()
    assert inst.instrument() is True
    assert target.greet is original
    assert inst.patched_modules == ()
    assert instrumentation_errors() == {"broken.patch": 1}
    inst.uninstrument()


# --------------------------------------------------------------------------- error guard


def test_guard_context_manager_counts_and_suppresses() -> None:
    g = guard("unit.cm")
    for _ in range(3):
        with g:
            raise ValueError("instrumentation bug")
    assert instrumentation_errors() == {"unit.cm": 3}


def test_guard_does_not_swallow_base_exceptions() -> None:
    with pytest.raises(KeyboardInterrupt):
        with guard("unit.kbd"):
            raise KeyboardInterrupt
    assert instrumentation_errors() == {}


def test_guard_decorator_returns_none_on_error() -> None:
    @guard("unit.deco")
    def recorder(x: int) -> int:
        if x < 0:
            raise ValueError(x)
        return x * 2

    assert recorder(2) == 4
    assert recorder(-1) is None
    assert recorder.__name__ == "recorder"
    assert instrumentation_errors() == {"unit.deco": 1}


def test_count_error_logs_once_per_where(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="ats.instrumentation"):
        count_error("unit.log", ValueError("a"))
        count_error("unit.log", ValueError("b"))
        count_error("unit.other", TypeError("c"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "ats: instrumentation error in unit.log (counted; the program's call is unaffected):"
        " ValueError: a",
        "ats: instrumentation error in unit.other (counted; the program's call is unaffected):"
        " TypeError: c",
    ]
    assert instrumentation_errors() == {"unit.log": 2, "unit.other": 1}


def test_count_error_uses_runtime_counter_when_running(monkeypatch: pytest.MonkeyPatch) -> None:
    counted: list[tuple[str, str]] = []

    class Errors:
        def count(self, where: str, exc: BaseException) -> None:
            counted.append((where, type(exc).__name__))

    class Runtime:
        errors = Errors()

    fake = types.ModuleType("ats._runtime")
    fake._RUNTIME = Runtime()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ats._runtime", fake)
    count_error("unit.rt", OSError("x"))
    assert counted == [("unit.rt", "OSError")]
    assert instrumentation_errors() == {}


def test_instrumentation_error_never_changes_the_users_call(target: types.ModuleType) -> None:
    """Return values and exceptions of the wrapped call pass through the wrapper untouched."""

    class Faulty(Greeter):
        name = "faulty"

        def _patch(self, module: types.ModuleType) -> None:
            greet = module.greet
            fail = module.fail

            def broken_record() -> None:
                raise ZeroDivisionError("bug in ATS")

            def wrapped_greet(who: str) -> str:
                result: str = greet(who)
                with guard("faulty.record"):
                    broken_record()
                return result

            def wrapped_fail() -> None:
                try:
                    fail()
                except BaseException:
                    with guard("faulty.record"):
                        broken_record()
                    raise

            self.replace(module, "greet", wrapped_greet)
            self.replace(module, "fail", wrapped_fail)

    inst = Faulty()
    inst.instrument()
    try:
        assert target.greet("bo") == "hello bo"
        with pytest.raises(KeyError) as info:
            target.fail()
        assert info.value.args == ("boom",)
        assert instrumentation_errors() == {"faulty.record": 2}
    finally:
        inst.uninstrument()


# --------------------------------------------------------------------------- lazy patching


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter (nothing imported yet) with tmp_path on sys.path."""
    env_path = f"{tmp_path}:{ATS_ROOT}"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


LAZY_PRELUDE = """
import sys
from types import ModuleType
from ats.instrumentation import Instrumentor

class Inst(Instrumentor):
    name = "lazy"
    target_modules = ("lazytarget",)
    supported_versions = ">=1.0"
    patched = 0
    def _patch(self, module):
        Inst.patched += 1
        self.replace(module, "value", lambda: "patched")
    def _unpatch(self, module):
        self.restore(module)
"""


def test_lazy_patch_when_target_imported_after_instrument(tmp_path: Path) -> None:
    (tmp_path / "lazytarget.py").write_text(
        "__version__ = '1.4'\ndef value():\n    return 'original'\n"
    )
    result = run_python(
        LAZY_PRELUDE
        + """
inst = Inst()
inst.instrument()
assert "lazytarget" not in sys.modules
finder_installed = any(type(f).__name__ == "_ImportWatcher" for f in sys.meta_path)
import lazytarget
print(finder_installed, Inst.patched, lazytarget.value())
# the real loader is back on the module: nothing of ATS is left in its spec
print(type(lazytarget.__loader__).__name__, type(lazytarget.__spec__.loader).__name__)
inst.uninstrument()
print(lazytarget.value(), any(type(f).__name__ == "_ImportWatcher" for f in sys.meta_path))
import importlib
importlib.reload(lazytarget)
print(Inst.patched, lazytarget.value())
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "True 1 patched",
        "SourceFileLoader SourceFileLoader",
        "original False",
        "1 original",
    ]


def test_every_order_of_import_instrument_uninstrument(tmp_path: Path) -> None:
    (tmp_path / "lazytarget.py").write_text(
        "__version__ = '1.4'\ndef value():\n    return 'original'\n"
    )
    result = run_python(
        LAZY_PRELUDE
        + """
inst = Inst()
# uninstrument before import: the import is left alone
inst.instrument(); inst.uninstrument()
import lazytarget
print(lazytarget.value(), Inst.patched)
# import, then instrument: patched now
inst.instrument(); print(lazytarget.value(), Inst.patched)
inst.instrument(); print(lazytarget.value(), Inst.patched)
inst.uninstrument(); print(lazytarget.value())
inst.uninstrument(); print(lazytarget.value())
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "original 0",
        "patched 1",
        "patched 1",
        "original",
        "original",
    ]


def test_lazy_patch_error_never_breaks_the_import(tmp_path: Path) -> None:
    (tmp_path / "lazytarget.py").write_text("__version__ = '1.4'\nvalue = 1\n")
    result = run_python(
        """
import sys
from ats.instrumentation import Instrumentor, instrumentation_errors

class Inst(Instrumentor):
    name = "boom"
    target_modules = ("lazytarget",)
    def _patch(self, module):
        raise RuntimeError("bug")
    def _unpatch(self, module):
        pass

Inst().instrument()
import lazytarget
print(lazytarget.value, instrumentation_errors())
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["1 {'boom.patch': 1}"]


def test_lazy_unsupported_version_warns_on_import(tmp_path: Path) -> None:
    (tmp_path / "lazytarget.py").write_text(
        "__version__ = '0.9'\ndef value():\n    return 'original'\n"
    )
    result = run_python(
        LAZY_PRELUDE
        + """
import warnings
warnings.simplefilter("default")
Inst().instrument()
import lazytarget
print(lazytarget.value(), Inst.patched)
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["original 0"]
    assert result.stderr.count("UnsupportedVersionWarning") == 1
    assert (
        "ats: lazy instrumentation not applied: lazytarget is version 0.9, supported >=1.0"
        in result.stderr
    )


def test_missing_target_module_imports_fail_normally(tmp_path: Path) -> None:
    result = run_python(
        """
from ats.instrumentation import Instrumentor
class Inst(Instrumentor):
    name = "missing"
    target_modules = ("no_such_module_xyz",)
    def _patch(self, module): pass
    def _unpatch(self, module): pass
Inst().instrument()
try:
    import no_such_module_xyz
except ModuleNotFoundError as exc:
    print(exc.name)
""",
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["no_such_module_xyz"]
