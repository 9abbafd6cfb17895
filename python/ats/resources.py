"""Process resource usage: a low-frequency sampler thread and the ``resource_usage`` of seed 003.

With ``resources.enabled`` the runtime starts one daemon thread (``ats-resources``) that every
``resources.interval_s`` seconds reads the process's figures through psutil and sets gauges:

=============================  =====  ==========================================================
gauge                          unit   value
=============================  =====  ==========================================================
``system.cpu.usage_percent``   ``%``  CPU used by this process since the previous sample (seed 003)
``system.memory.used_mb``      ``MB`` resident memory of this process (seed 003)
``process.thread.count``       ``1``  threads of this process (OpenTelemetry's name: the seeds
                                      name none)
``network.connections.active`` ``1``  open inet sockets of this process (seed 003)
``system.network.io``          ``By`` bytes sent/received by the host since boot, label
                                      ``network.io.direction`` = ``transmit`` / ``receive``
                                      (OpenTelemetry's name; psutil has no per-process figure)
=============================  =====  ==========================================================

The app threads never sample: :func:`usage` (the ``resource_usage`` object of seed 003
``agent.lifecycle`` / ``task.execution``) returns the sampler's latest figures, or, when no
sampler runs, a sample at most once per :data:`INLINE_MIN_INTERVAL_S` (reading ``/proc`` costs
tens of microseconds; an agent step costs milliseconds).  psutil is imported only here; without
it, :func:`usage` returns ``None`` and :func:`start` counts an error and starts nothing.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final

from ats._runtime import METRICS, count_error

__all__ = ["INLINE_MIN_INTERVAL_S", "ResourceSampler", "Usage", "publish", "running", "sample", "start", "stop", "usage"]

#: When no sampler thread runs, :func:`usage` samples inline at most this often.
INLINE_MIN_INTERVAL_S: Final = 1.0

_MB: Final = 1024 * 1024


class Usage:
    """One sample (immutable by convention). ``network_bytes`` is the host's bytes sent plus
    received since boot. Not a dataclass: ``dataclasses`` is a measurable start-up import."""

    __slots__ = ("cpu_percent", "memory_mb", "threads", "connections", "bytes_sent", "bytes_recv", "taken_at")

    def __init__(self, cpu_percent: float, memory_mb: float, threads: int, connections: int, bytes_sent: int,
                 bytes_recv: int, taken_at: float) -> None:
        self.cpu_percent = cpu_percent
        self.memory_mb = memory_mb
        self.threads = threads
        self.connections = connections
        self.bytes_sent = bytes_sent
        self.bytes_recv = bytes_recv
        self.taken_at = taken_at

    @property
    def network_bytes(self) -> int:
        return self.bytes_sent + self.bytes_recv

    def as_fields(self, prefix: str = "resource_usage.") -> dict[str, float | int]:
        """Seed 003 ``resource_usage`` flattened with dots (the registry's convention)."""
        return {
            f"{prefix}cpu_percent": self.cpu_percent,
            f"{prefix}memory_mb": self.memory_mb,
            f"{prefix}network_bytes": self.network_bytes,
        }


class _Reader:
    """psutil handles for this process; one per process (a forked child gets a new one)."""

    def __init__(self) -> None:
        import psutil

        self.pid = os.getpid()
        self._psutil = psutil
        self._process = psutil.Process(self.pid)
        self._process.cpu_percent(None)  # primes the CPU delta: the first real call measures from here
        self._lock = threading.Lock()

    def read(self) -> Usage:
        with self._lock:  # psutil's cpu_percent keeps per-object state
            p = self._process
            with p.oneshot():
                cpu = p.cpu_percent(None)
                rss = p.memory_info().rss
                threads = p.num_threads()
            try:
                connections = len(p.net_connections(kind="inet"))
            except (self._psutil.Error, OSError):
                connections = 0
            net = self._psutil.net_io_counters()
        return Usage(
            cpu_percent=float(cpu),
            memory_mb=round(rss / _MB, 3),
            threads=int(threads),
            connections=connections,
            bytes_sent=int(net.bytes_sent) if net is not None else 0,
            bytes_recv=int(net.bytes_recv) if net is not None else 0,
            taken_at=time.monotonic(),
        )


_READER: _Reader | None = None
_READER_LOCK = threading.Lock()
_LATEST: Usage | None = None


def _reader() -> _Reader | None:
    global _READER
    reader = _READER
    if reader is not None and reader.pid == os.getpid():
        return reader
    with _READER_LOCK:
        if _READER is None or _READER.pid != os.getpid():
            try:
                _READER = _Reader()
            except Exception as exc:  # psutil missing or unusable: resource figures are left out
                count_error("resources.psutil", exc)
                return None
        return _READER


def sample() -> Usage | None:
    """Reads the figures now (on the calling thread) and remembers them as the latest."""
    global _LATEST
    reader = _reader()
    if reader is None:
        return None
    try:
        _LATEST = reader.read()
    except Exception as exc:
        count_error("resources.sample", exc)
        return None
    return _LATEST


def usage() -> Usage | None:
    """The latest figures: the sampler's, or an inline sample at most once per
    :data:`INLINE_MIN_INTERVAL_S` when none is recent. ``None`` when psutil is unavailable."""
    latest = _LATEST
    sampler = _SAMPLER
    if latest is not None:
        fresh_for = sampler.interval_s * 2 if sampler is not None else INLINE_MIN_INTERVAL_S
        if time.monotonic() - latest.taken_at < fresh_for:
            return latest
    return sample()


def publish(u: Usage) -> None:
    """Sets the gauges from one sample."""
    METRICS.gauge("system.cpu.usage_percent", "%").set(u.cpu_percent)
    METRICS.gauge("system.memory.used_mb", "MB").set(u.memory_mb)
    METRICS.gauge("process.thread.count", "1").set(float(u.threads))
    METRICS.gauge("network.connections.active", "1").set(float(u.connections))
    io = METRICS.gauge("system.network.io", "By")
    io.set(float(u.bytes_sent), {"network.io.direction": "transmit"})
    io.set(float(u.bytes_recv), {"network.io.direction": "receive"})


class ResourceSampler:
    """The sampler thread: samples and publishes every ``interval_s`` seconds until :meth:`stop`."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ats-resources", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            u = sample()
            if u is not None:
                try:
                    publish(u)
                    self.samples += 1
                except Exception as exc:
                    count_error("resources.publish", exc)
            if self._stop.wait(self.interval_s):
                return


_SAMPLER: ResourceSampler | None = None
_SAMPLER_LOCK = threading.Lock()


def start(interval_s: float) -> ResourceSampler | None:
    """Starts the sampler thread (once; a running one is returned). ``None`` without psutil."""
    global _SAMPLER
    with _SAMPLER_LOCK:
        if _SAMPLER is not None and _SAMPLER.alive:
            return _SAMPLER
        if _reader() is None:
            return None
        _SAMPLER = ResourceSampler(interval_s)
        _SAMPLER.start()
        return _SAMPLER


def stop(timeout: float = 1.0) -> None:
    """Stops the sampler thread, if one runs."""
    global _SAMPLER
    with _SAMPLER_LOCK:
        sampler, _SAMPLER = _SAMPLER, None
    if sampler is not None:
        sampler.stop(timeout)


def running() -> ResourceSampler | None:
    return _SAMPLER


def _after_fork_in_child() -> None:
    # Another thread may have held a lock at the fork; the child has only this thread.
    global _READER_LOCK, _SAMPLER_LOCK, _SAMPLER
    _READER_LOCK = threading.Lock()
    _SAMPLER_LOCK = threading.Lock()
    _SAMPLER = None  # its thread did not survive; the runtime starts a new one when enabled


os.register_at_fork(after_in_child=_after_fork_in_child)
