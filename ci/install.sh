#!/usr/bin/env bash
# Builds ATS from this checkout into a fresh virtualenv (.venv) with the test tools.
# Everything the tests need is installed here; nothing is assumed to be on the machine
# beyond the Rust toolchain and CPython 3.10+.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${ATS_VENV:-.venv}

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r ci/requirements-test.txt
# One build of the extension: the wheel is kept in .ci-wheels/ for other venvs of the test run.
rm -rf .ci-wheels
"$VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir .ci-wheels .
"$VENV/bin/python" -m pip install --quiet .ci-wheels/ats_telemetry-*.whl ./plugins/*/
