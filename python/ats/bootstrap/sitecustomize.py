"""Loaded at interpreter start-up because ``ats-run`` put this directory first on
PYTHONPATH. It initialises ATS once, then runs the program's own ``sitecustomize``
(if there is one further down the path), so nothing the user relied on is lost.
"""

from __future__ import annotations


def _run_user_sitecustomize() -> None:
    import importlib.machinery
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    search = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", search)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    # The user's module takes over the name, as if it had been found first.
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


def _start() -> None:
    try:
        import ats.auto  # noqa: F401  (initialises ATS exactly once per process)
    except Exception as exc:  # telemetry must never stop the program from starting
        import sys

        print(f"ats: not started: {exc}", file=sys.stderr)


_start()
_run_user_sitecustomize()
