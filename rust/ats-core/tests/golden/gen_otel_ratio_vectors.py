#!/usr/bin/env python3
"""Generate golden vectors for ATS's trace-id ratio sampler from the real
OpenTelemetry Python SDK (`opentelemetry.sdk.trace.sampling.TraceIdRatioBased`).

The Rust test `tests/sampling_otel_golden.rs` checks that
`ats_core::sampling::TraceIdRatio` makes the same decision (and computes the
same bound) as the SDK for every vector in `otel_ratio_vectors.json`.

How to regenerate (in a throwaway venv outside the repository):

    python3 -m venv /tmp/otelvenv
    /tmp/otelvenv/bin/pip install opentelemetry-sdk
    /tmp/otelvenv/bin/python rust/ats-core/tests/golden/gen_otel_ratio_vectors.py \
        > rust/ats-core/tests/golden/otel_ratio_vectors.json

The output is deterministic for a given SDK version (fixed PRNG seed), so a
diff after regenerating means the SDK changed its algorithm.

Each vector: `trace_id` (32 lowercase hex digits), `rate` (the float, for
reading), `rate_bits` (IEEE-754 bits as 16 hex digits: the exact input, since
a JSON float parser may round differently), `bound` (decimal string; the SDK's
`get_bound_for_rate`, which is 2**64 for rate 1.0 and so does not fit a u64)
and `sampled` (the SDK's decision).
"""

import json
import random
import struct
import sys

from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.version import __version__ as otel_version

SEED = 20240611
MASK64 = (1 << 64) - 1

# Plain ratios plus the edges: 0, 1, the largest double below 1, tiny rates
# whose bound is decided by Python's round-half-to-even (0.5, 1.5 and 2.5
# units of 2**-64), and the smallest subnormal.
RATES = [
    0.0,
    1.0,
    0.5,
    0.1,
    0.001,
    0.999999,
    0.25,
    0.01,
    1e-6,
    1e-12,
    0.3,
    0.7,
    0.9,
    1.0 / 3.0,
    0.123456789,
    struct.unpack(">d", bytes.fromhex("3fefffffffffffff"))[0],  # 1 - 2**-53
    2.0**-64,
    0.5 * 2.0**-64,
    1.5 * 2.0**-64,
    2.5 * 2.0**-64,
    2.0**-60,
    5e-324,
]


def rate_bits(rate: float) -> str:
    return struct.pack(">d", rate).hex()


def vector(sampler: TraceIdRatioBased, rate: float, trace_id: int) -> dict:
    result = sampler.should_sample(None, trace_id, "ats.golden")
    return {
        "trace_id": f"{trace_id:032x}",
        "rate": rate,
        "rate_bits": rate_bits(rate),
        "bound": str(sampler.bound),
        "sampled": result.decision is Decision.RECORD_AND_SAMPLE,
    }


def main() -> None:
    rng = random.Random(SEED)
    vectors = []
    for rate in RATES:
        sampler = TraceIdRatioBased(rate)
        bound = sampler.bound
        ids = []
        # Random 128-bit ids: only the low 64 bits should matter.
        ids += [rng.getrandbits(128) for _ in range(40)]
        # Ids whose low 64 bits sit right at the bound (both sides), with
        # random high bits to prove the high half is ignored.
        for low in (bound - 2, bound - 1, bound, bound + 1):
            if 0 <= low <= MASK64:
                ids.append((rng.getrandbits(64) << 64) | low)
                ids.append(low)
        # Extremes of the id space.
        ids += [0, 1, MASK64, MASK64 + 1, (1 << 128) - 1, 1 << 63, (1 << 63) - 1]
        for trace_id in ids:
            vectors.append(vector(sampler, rate, trace_id))
    # Random rates too, so the bound computation itself is covered widely.
    for _ in range(250):
        rate = rng.random()
        sampler = TraceIdRatioBased(rate)
        for _ in range(2):
            vectors.append(vector(sampler, rate, rng.getrandbits(128)))
        low = sampler.bound
        if low <= MASK64:
            vectors.append(vector(sampler, rate, low))
        if low >= 1:
            vectors.append(vector(sampler, rate, low - 1))

    # One vector per line: compact, yet diffs stay readable.
    out = sys.stdout
    out.write("{\n")
    out.write(' "generator": "rust/ats-core/tests/golden/gen_otel_ratio_vectors.py",\n')
    out.write(f' "opentelemetry_sdk_version": {json.dumps(otel_version)},\n')
    out.write(f' "seed": {SEED},\n')
    out.write(f' "count": {len(vectors)},\n')
    out.write(' "vectors": [\n')
    out.write(",\n".join("  " + json.dumps(v) for v in vectors))
    out.write("\n ]\n}\n")


if __name__ == "__main__":
    main()
