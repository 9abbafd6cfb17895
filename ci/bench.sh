#!/usr/bin/env bash
# Benchmarks, side by side with the peers (OpenTelemetry, ddtrace). Not part of the tests.
# Usage: bash ci/bench.sh   (after ci/install.sh; results also saved as JSON under .benchmarks/)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" -m pip install --quiet -r benches/requirements.txt
# ddtrace's own tracer would otherwise try to reach a local agent.
export DD_TRACE_ENABLED=true DD_TRACE_AGENT_URL=http://127.0.0.1:9 DD_INSTRUMENTATION_TELEMETRY_ENABLED=false
for suite in benches/test_bench_native.py benches/test_bench_record.py benches/test_bench_sqlite3.py benches/test_bench_startup.py; do
  "$PY" -m pytest "$suite" --benchmark-only --benchmark-columns=median,mean,stddev,rounds -q -p no:cacheprovider
done
"$PY" benches/sqlite3_overhead.py
"$PY" benches/sqlite3_instructions.py
"$PY" benches/langchain_overhead.py
"$PY" benches/startup.py
(cd rust/ats-core && cargo bench --quiet -- --warm-up-time 1 --measurement-time 3)
