"""An example third-party ATS plugin: counts tool calls, per tool and outcome.

It is the worked example of docs/plugins.md, and the tests install it with pip.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

from ats import hookimpl

_lock = threading.Lock()
_calls: Counter[tuple[str, str]] = Counter()
_settings: dict[str, Any] = {"ignore": frozenset()}


@hookimpl
def ats_configure(config: Any) -> None:
    """Read this plugin's own setting once ATS is configured.

    ``TOOL_COUNTER_IGNORE`` is a comma-separated list of tool names not to count.
    """
    _settings["config"] = config
    ignore = os.environ.get("TOOL_COUNTER_IGNORE", "")
    _settings["ignore"] = frozenset(name.strip() for name in ignore.split(",") if name.strip())


@hookimpl
def ats_tool_execute_after(call: Any, error: BaseException | None) -> None:
    """Count one finished tool call.  Takes only the arguments it needs."""
    if call.name in _settings["ignore"]:
        return
    outcome = "ok" if error is None else "error"
    with _lock:
        _calls[(call.name, outcome)] += 1


def tool_calls() -> dict[tuple[str, str], int]:
    """Counts so far, keyed by (tool name, "ok" | "error")."""
    with _lock:
        return dict(_calls)
