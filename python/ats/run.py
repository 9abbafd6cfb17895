"""``ats-run [options] [--] command [args...]``: run an unchanged program with ATS.

The wrapper puts ATS's bootstrap directory first on ``PYTHONPATH`` (so every Python
process started from here, children included, initialises ATS at start-up) and then
*replaces itself* with the command: the pid, signals, stdout and exit code are the
program's own.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "bootstrap")

#: Option -> the environment variable it sets for the program.
_OPTIONS = {
    "--config": "ATS_CONFIG",
    "--service-name": "OTEL_SERVICE_NAME",
    "--home": "ATS_HOME",
    "--disable-plugins": "ATS_DISABLED_PLUGINS",
}


def _parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="ats-run",
        description="Run a program with ATS instrumentation (like opentelemetry-instrument / ddtrace-run).",
        usage="ats-run [options] [--] command [args...]",
    )
    p.add_argument("--config", help="configuration file (sets ATS_CONFIG)")
    p.add_argument("--service-name", help="service name (sets OTEL_SERVICE_NAME)")
    p.add_argument("--home", help="ATS home / store directory (sets ATS_HOME)")
    p.add_argument("--disable-plugins", help="comma-separated plugin names to skip (sets ATS_DISABLED_PLUGINS)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the program and its arguments")
    return p


def _parse_fast(argv: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The options and the command, without argparse (this wrapper's start-up is the program's);
    None for anything else (``--help``, abbreviations, mistakes): argparse then handles it."""
    settings: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return settings, argv[i + 1:]
        if not arg.startswith("-"):
            return settings, argv[i:]
        name, eq, value = arg.partition("=")
        if name not in _OPTIONS:
            return None
        if not eq:
            if i + 1 == len(argv):
                return None
            i += 1
            value = argv[i]
        settings[_OPTIONS[name]] = value
        i += 1
    return settings, []


def _parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    fast = _parse_fast(argv)
    if fast is not None:
        return fast
    args = _parser().parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    settings = {env: value for option, env in _OPTIONS.items()
                if (value := getattr(args, option[2:].replace("-", "_"))) is not None}
    return settings, command


def build_environment(settings: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The program's environment: the bootstrap directory first on PYTHONPATH, plus ``settings``."""
    env = dict(environ)
    existing = env.get("PYTHONPATH", "")
    parts = [BOOTSTRAP_DIR] + [p for p in existing.split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.update(settings)
    return env


def main(argv: list[str] | None = None) -> int:
    settings, command = _parse(sys.argv[1:] if argv is None else argv)
    if not command:
        _parser().print_usage(sys.stderr)
        print("ats-run: error: no command given", file=sys.stderr)
        return 2
    from shutil import which

    executable = which(command[0])
    if executable is None:
        print(f"ats-run: error: command not found: {command[0]}", file=sys.stderr)
        return 127
    env = build_environment(settings, os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, command, env)
    return 0  # pragma: no cover - execve does not return
