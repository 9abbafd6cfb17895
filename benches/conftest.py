from __future__ import annotations

# Benchmarks are run explicitly (see README "Benchmarks"), never as part of the test suite.
