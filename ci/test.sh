#!/usr/bin/env bash
# The one test command (README): builds and installs ATS from scratch into a fresh
# virtualenv, then runs every suite. Any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "install (fresh venv, pip install .)"
bash ci/install.sh
PY=.venv/bin/python

step "services (nginx from Debian; rotel from PyPI, checked)"
bash ci/collector.sh

step "cargo test (ats-core: unit, property, golden, testdata scoring)"
cargo test --workspace --exclude ats-python --quiet

step "mypy --strict python/ats"
"$PY" -m mypy --strict python/ats

step "stubtest ats._native"
"$PY" -m mypy.stubtest ats._native --allowlist ci/stubtest-allowlist.txt

# --- database servers for tests/drivers (ci/services.sh; PostgreSQL + MariaDB on loopback) ---
step "services (PostgreSQL, MariaDB)"; bash ci/services.sh start

step "pytest"
"$PY" -m pytest tests

# --- ats-mcp on the other supported mcp releases (the newest 1.x is in requirements-test.txt) ---
# mcp 1.x and 2.x differ enough (2.x makes its own OpenTelemetry spans) that the lowest 1.x, the
# lowest 2.x and the newest 2.x each get a small venv: mcp, pytest, ATS, ats-mcp; only tests/mcp.
for req in ci/requirements-mcp-lowest.txt ci/requirements-mcp2-lowest.txt ci/requirements-mcp2-newest.txt; do
    step "tests/mcp on $(grep -m1 '^mcp==' "$req") ($req)"
    VENV=".venv-$(basename "$req" .txt)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet -r "$req"
    "$VENV/bin/python" -m pip install --quiet .ci-wheels/ats_telemetry-*.whl ./plugins/ats-mcp
    "$VENV/bin/python" -m pytest tests/mcp -p no:cacheprovider
done
