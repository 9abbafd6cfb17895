"""``ats-run [options] [--] command [args...]``: run an unchanged program with ATS.

The wrapper puts ATS's bootstrap directory first on ``PYTHONPATH`` (so every Python
process started from here, children included, initialises ATS at start-up) and then
*replaces itself* with the command: the pid, signals, stdout and exit code are the
program's own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

BOOTSTRAP_DIR = str(Path(__file__).resolve().parent / "bootstrap")


def _parser() -> argparse.ArgumentParser:
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


def build_environment(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, str]:
    env = dict(environ)
    existing = env.get("PYTHONPATH", "")
    parts = [BOOTSTRAP_DIR] + [p for p in existing.split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    for value, key in (
        (args.config, "ATS_CONFIG"),
        (args.service_name, "OTEL_SERVICE_NAME"),
        (args.home, "ATS_HOME"),
        (args.disable_plugins, "ATS_DISABLED_PLUGINS"),
    ):
        if value is not None:
            env[key] = value
    return env


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        _parser().print_usage(sys.stderr)
        print("ats-run: error: no command given", file=sys.stderr)
        return 2
    executable = shutil.which(command[0])
    if executable is None:
        print(f"ats-run: error: command not found: {command[0]}", file=sys.stderr)
        return 127
    env = build_environment(args, dict(os.environ))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, command, env)
    return 0  # pragma: no cover - execve does not return
