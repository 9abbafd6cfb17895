"""The plugin guide's worked example (docs/plugins.md) works as a real, pip-installed plugin.

The plugin is built and installed with pip into a temporary target directory (not into the
test environment), which is then put on sys.path: discovery goes through its installed
``.dist-info`` entry points exactly as for any third-party distribution.  Needs setuptools>=77
in the test environment (``--no-build-isolation``: no network).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ats as _ats_for_path

# Where the *installed* ats lives (site-packages in CI, python/ in an editable install):
# subprocesses must import the built package, not the source tree.
ATS_ROOT = str(Path(_ats_for_path.__file__).resolve().parent.parent)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "tests" / "plugins" / "ats-example-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    target = tmp_path_factory.mktemp("site")
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(target), str(source),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    yield target


def run(code: str, site: Path, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": f"{site}:{ATS_ROOT}", "PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@dataclass
class Call:
    name: str
    arguments: dict[str, object]
    session_id: str | None = None


def test_installed_distribution_metadata(installed: Path) -> None:
    (info,) = installed.glob("ats_example_plugin-*.dist-info")
    assert info.name == "ats_example_plugin-1.0.0.dist-info"
    assert (info / "entry_points.txt").read_text().split() == [
        "[ats]",
        "tool-counter",
        "=",
        "ats_example_plugin",
    ]


def test_loads_through_entry_points_and_its_hooks_fire(installed: Path) -> None:
    out = run(
        """
        from dataclasses import dataclass
        from ats.plugins import PluginHost

        @dataclass
        class Call:
            name: str
            arguments: dict
            session_id: str = None

        host = PluginHost()
        for row in host.load(allowed={"tool-counter"}):
            if row.name == "tool-counter":
                print(row.name, row.distribution, row.version, row.status, row.reason)
        host.configure(object())
        host.tool_execute_before(Call("read_file", {}))
        host.tool_execute_after(Call("read_file", {}), "text", None, 1200)
        host.tool_execute_after(Call("read_file", {}), None, OSError("gone"), 800)
        host.tool_execute_after(Call("search", {}), [], None, 50)
        host.tool_execute_after(Call("noisy", {}), None, None, 5)

        import ats_example_plugin
        print(sorted(ats_example_plugin.tool_calls().items()))
        """,
        installed,
        TOOL_COUNTER_IGNORE="noisy, other",
    )
    assert out == [
        "tool-counter ats-example-plugin 1.0.0 active None",
        "[(('read_file', 'error'), 1), (('read_file', 'ok'), 1), (('search', 'ok'), 1)]",
    ]


def test_disabled_by_name_is_not_loaded(installed: Path) -> None:
    out = run(
        """
        import sys
        from ats.plugins import PluginHost
        host = PluginHost()
        rows = {r.name: (r.status, r.reason) for r in host.load(disabled=["tool-counter"])}
        print(rows["tool-counter"], "ats_example_plugin" in sys.modules)
        """,
        installed,
    )
    assert out == ["('skipped', 'disabled by plugins.disabled') False"]


def test_in_process_with_the_host(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ats.plugins import PluginHost

    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.delitem(sys.modules, "ats_example_plugin", raising=False)
    monkeypatch.delenv("TOOL_COUNTER_IGNORE", raising=False)
    host = PluginHost()
    statuses = {s.name: s for s in host.load(allowed={"ats-example-plugin"})}
    assert statuses["tool-counter"].status == "active"
    config = object()
    host.configure(config)
    host.tool_execute_after(Call("write_file", {"path": "x"}), None, None, 10)

    import ats_example_plugin

    assert ats_example_plugin._settings["config"] is config
    assert ats_example_plugin.tool_calls() == {("write_file", "ok"): 1}


def test_guide_embeds_the_example_verbatim() -> None:
    """docs/plugins.md shows exactly the plugin the tests install."""
    guide = (REPO / "docs" / "plugins.md").read_text()
    for path in ("pyproject.toml", "ats_example_plugin/__init__.py"):
        assert (EXAMPLE / path).read_text().rstrip() in guide, path


def test_guide_testing_snippet_runs() -> None:
    guide = (REPO / "docs" / "plugins.md").read_text()
    snippet = guide.split("## Testing a plugin", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    out = run(snippet + "\nprint('ok')\n", EXAMPLE)  # the module from the source tree
    assert out == ["ok"]
