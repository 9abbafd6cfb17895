"""Sampling through the native module, checked against OpenTelemetry's own SDK."""

from __future__ import annotations

import random

import pytest
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from ats import _native

TRACE_A = "0" * 32


@pytest.mark.parametrize("ratio", [0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.999999, 1.0])
def test_ratio_decisions_equal_opentelemetry(ratio: float) -> None:
    rng = random.Random(ratio)
    ours = _native.TraceIdRatio(ratio)
    theirs = TraceIdRatioBased(ratio)
    bound = theirs.bound
    ids = [rng.getrandbits(128) for _ in range(5_000)]
    # Ids on and next to the bound, where an off-by-one would show.
    ids += [(rng.getrandbits(64) << 64) | max(0, min(bound + d, 2**64 - 1)) for d in (-1, 0, 1)]
    for trace_id in ids:
        want = theirs.should_sample(None, trace_id, "span").decision.is_sampled()
        assert ours.should_sample(f"{trace_id:032x}") is want, (ratio, trace_id)


def test_invalid_ratio_is_rejected() -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            _native.TraceIdRatio(bad)


def test_pipeline_applies_family_rules_and_counts_reasons() -> None:
    # errors always, successes never, for the driver family; everything else kept.
    p = _native.Pipeline(sampling_rules=[("driver.", 0.0, 1.0)])
    rng = random.Random(7)
    kept_ok = kept_err = kept_other = 0
    for i in range(300):
        trace = f"{rng.getrandbits(128):032x}"
        kept_ok += p.record_span("driver.query", "t", trace, i + 1, 0, 0, 1, 1)
        kept_err += p.record_span("driver.query", "t", trace, i + 1, 0, 0, 1, 2)
        kept_other += p.record_span("kernel.exec", "t", trace, i + 1, 0, 0, 1, 1)
    assert (kept_ok, kept_err, kept_other) == (0, 300, 300)
    stats = p.stats()
    assert stats["sampled_out"] == {"parent": 0, "rule": 300, "ratio": 0, "rate_limit": 0, "daily_cap": 0}
    assert stats["pushed"] == 600


def test_unsampled_parent_drops_child_and_daily_cap_limits_tenant() -> None:
    p = _native.Pipeline(tenant="acme", daily_cap=5)
    results = [p.record_span("kernel.exec", "t", TRACE_A, i + 1, 0, 0, 1, 1) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert p.record_span("kernel.exec", "t", TRACE_A, 99, 42, 0, 1, 1, parent_sampled=False) is False
    out = p.stats()["sampled_out"]
    assert (out["daily_cap"], out["parent"]) == (3, 1)


def test_bad_sampling_configuration_names_the_problem() -> None:
    with pytest.raises(ValueError, match="sampling"):
        _native.Pipeline(sample_ratio=2.0)
    with pytest.raises(ValueError, match="driver"):
        _native.Pipeline(sampling_rules=[("driver.", 0.5, 1.5)])


def test_without_parent_based_sampling_children_are_decided_like_roots() -> None:
    follows = _native.Pipeline(sample_ratio=1.0)
    independent = _native.Pipeline(sample_ratio=1.0, parent_based=False)
    assert follows.record_span("kernel.exec", "t", TRACE_A, 2, 1, 0, 1, 1, parent_sampled=False) is False
    assert independent.record_span("kernel.exec", "t", TRACE_A, 2, 1, 0, 1, 1, parent_sampled=False) is True
