"""ats.resources: the psutil sampler thread, its gauges, and the seed 003 ``resource_usage``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import ats
from ats import resources
from ats.config import ConfigError


def gauges() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(p["name"], tuple(sorted(p["labels"].items()))): p["value"]
            for p in ats.metrics.snapshot() if p["kind"] == "gauge"}


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ats-resources"]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[resources.ResourceSampler]:
    rt = ats.init(**{"home": str(tmp_path / ".ats"), "resources.enabled": True, "resources.interval_s": 1})
    assert rt is not None
    try:
        sampler = resources.running()
        assert sampler is not None
        yield sampler
    finally:
        ats.shutdown(5.0)


def wait_for_samples(sampler: resources.ResourceSampler, n: int) -> None:
    deadline = time.monotonic() + 10
    while sampler.samples < n:
        assert time.monotonic() < deadline, "the sampler did not sample"
        time.sleep(0.02)


def test_sampler_thread_publishes_the_gauges(running: resources.ResourceSampler) -> None:
    [thread] = sampler_threads()
    assert thread.daemon and thread is not threading.main_thread()
    assert running.interval_s == 1.0
    wait_for_samples(running, 1)
    g = gauges()
    rss_mb = psutil.Process(os.getpid()).memory_info().rss / (1024 * 1024)
    memory = g[("system.memory.used_mb", ())]
    assert abs(memory - rss_mb) < max(64.0, rss_mb * 0.5)
    assert g[("system.cpu.usage_percent", ())] >= 0
    assert g[("process.thread.count", ())] >= 2  # the main thread and the sampler at least
    net = psutil.net_io_counters()
    sent = g[("system.network.io", (("network.io.direction", "transmit"),))]
    received = g[("system.network.io", (("network.io.direction", "receive"),))]
    assert 0 <= sent <= net.bytes_sent and 0 <= received <= net.bytes_recv
    assert g[("network.connections.active", ())] >= 0
    units = {p["name"]: p["unit"] for p in ats.metrics.snapshot()}
    assert (units["system.cpu.usage_percent"], units["system.memory.used_mb"], units["system.network.io"]) \
        == ("%", "MB", "By")


def test_sampler_samples_every_interval_and_stops_at_shutdown(running: resources.ResourceSampler) -> None:
    wait_for_samples(running, 2)  # the first sample at start, the second one interval later
    ats.shutdown(5.0)
    assert sampler_threads() == [] and resources.running() is None
    samples = running.samples
    time.sleep(1.2)
    assert running.samples == samples


def test_usage_reads_the_samplers_latest_figures(running: resources.ResourceSampler) -> None:
    wait_for_samples(running, 1)
    u = resources.usage()
    assert u is not None and u is resources.usage()  # no sampling on the caller's thread
    fields = u.as_fields()
    assert fields == {"resource_usage.cpu_percent": u.cpu_percent, "resource_usage.memory_mb": u.memory_mb,
                      "resource_usage.network_bytes": u.bytes_sent + u.bytes_recv}


def test_no_sampler_unless_enabled(tmp_path: Path) -> None:
    assert ats.init(**{"home": str(tmp_path / ".ats")}) is not None
    try:
        assert sampler_threads() == [] and resources.running() is None
    finally:
        ats.shutdown(5.0)


def test_inline_usage_is_rate_limited_without_a_sampler() -> None:
    assert resources.running() is None
    first = resources.usage()
    assert first is not None and first.memory_mb > 1 and first.threads >= 1
    assert resources.usage() is first  # within INLINE_MIN_INTERVAL_S: the same sample


@pytest.mark.parametrize("value", [0, 0.5, 3601, "often"])
def test_bad_interval_is_a_typed_error_naming_the_key(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match=r"resources\.interval_s"):
        ats.init(**{"home": str(tmp_path), "resources.interval_s": value})
