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

# --- ats-mcp on the lowest supported mcp release (the newest is in requirements-test.txt) ---
# A separate, small venv: only mcp (pinned low), pytest, ATS and the ats-mcp plugin; only tests/mcp.
step "tests/mcp on the lowest supported mcp (ci/requirements-mcp-lowest.txt)"
LOW=.venv-mcp-lowest
rm -rf "$LOW"
python3 -m venv "$LOW"
"$LOW/bin/python" -m pip install --quiet -r ci/requirements-mcp-lowest.txt
"$LOW/bin/python" -m pip install --quiet .ci-wheels/ats_telemetry-*.whl ./plugins/ats-mcp
"$LOW/bin/python" -m pytest tests/mcp -p no:cacheprovider
