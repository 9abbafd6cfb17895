"""Context propagation: contextvars across threads, executors and asyncio; W3C traceparent."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ats.context import (
    SpanContext, attach, current_span, detach, extract, inject, propagate_to_threads, restore_threads,
)

CTX = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", 0x00F067AA0BA902B7, sampled=True)


def test_traceparent_round_trip() -> None:
    carrier: dict[str, str] = {}
    inject(carrier, CTX)
    assert carrier == {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert extract(carrier) == SpanContext(CTX.trace_id, CTX.span_id, sampled=True, remote=True)
    assert extract({"TraceParent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}) == SpanContext(
        CTX.trace_id, CTX.span_id, sampled=False, remote=True)


@pytest.mark.parametrize("bad", [
    "", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    "00-4BF92F3577B34DA6A3CE929D0E0E473-00f067aa0ba902b7-01",
])
def test_invalid_traceparent_is_ignored(bad: str) -> None:
    assert extract({"traceparent": bad}) is None


def test_future_version_with_extra_fields_is_accepted() -> None:
    got = extract({"traceparent": "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"})
    assert got is not None and got.trace_id == CTX.trace_id


def test_context_follows_threads_and_executors_when_propagation_is_on() -> None:
    propagate_to_threads()
    try:
        token = attach(CTX)
        seen: list[SpanContext | None] = []
        t = threading.Thread(target=lambda: seen.append(current_span()))
        t.start()
        t.join()
        with ThreadPoolExecutor(2) as pool:
            seen.append(pool.submit(current_span).result())
        detach(token)
        assert seen == [CTX, CTX]
        assert current_span() is None
    finally:
        restore_threads()
    token = attach(CTX)
    seen_after: list[SpanContext | None] = []
    t = threading.Thread(target=lambda: seen_after.append(current_span()))
    t.start()
    t.join()
    detach(token)
    assert seen_after == [None], "restore_threads puts the originals back"


def test_context_follows_asyncio_tasks() -> None:
    async def child() -> SpanContext | None:
        await asyncio.sleep(0)
        return current_span()

    async def main() -> SpanContext | None:
        token = attach(CTX)
        try:
            return await asyncio.create_task(child())
        finally:
            detach(token)

    assert asyncio.run(main()) == CTX


def test_opentelemetry_current_span_is_joined() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("otel-parent") as parent:
        sc = parent.get_span_context()
        got = current_span()
    assert got == SpanContext(f"{sc.trace_id:032x}", sc.span_id, sampled=True, remote=False)
    assert current_span() is None
    del trace


def test_an_executor_imported_after_init_still_propagates_context(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, ats\n"
        "ats.init(home=sys.argv[1])\n"
        "print('concurrent.futures.thread' in sys.modules)\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ats.span('kernel.exec') as s:\n"
        "    with ThreadPoolExecutor(1) as pool:\n"
        "        print(pool.submit(ats.current_span).result() == s.context)\n"
        "ats.shutdown(5.0)\n"
        "from concurrent.futures import ThreadPoolExecutor as E\n"
        "print(E.submit.__qualname__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".ats")], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.stdout.split() == ["False", "True", "ThreadPoolExecutor.submit"], out.stderr
