"""The Python sink: a daemon thread that takes record batches from the native hand-off
queue and calls ``ats_process_batch`` once per batch.

It runs only when some plugin implements the hook. The app threads never wait for it: the
native flusher hands batches over through a bounded queue and drops (counted as
``handoff_full``) what a slow hook cannot keep up with. The hook runs with recording
suppressed, so telemetry about the hook's own work cannot loop back into the queue.
"""

from __future__ import annotations

import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ats import _native
    from ats.plugins import PluginHost

__all__ = ["BatchDrain"]

#: How long one wait for a batch lasts; bounds how late a stop request is noticed.
_POLL_S = 0.1


class BatchDrain:
    """Feeds ``ats_process_batch`` from a pipeline's hand-off queue on its own thread."""

    def __init__(self, pipeline: _native.Pipeline, plugins: PluginHost) -> None:
        self._pipeline = pipeline
        self._plugins = plugins
        self._lock = threading.Condition()
        self._stopping = False
        #: Records handed to the hook from the current pipeline (for ``wait_idle``).
        self._done = 0
        self.batches = 0
        self.records = 0
        self.hook_errors = 0
        pipeline.attach_drain()
        self._thread = threading.Thread(target=self._run, name="ats-batch-drain", daemon=True)
        self._thread.start()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"batches": self.batches, "records": self.records, "hook_errors": self.hook_errors}

    def switch(self, pipeline: _native.Pipeline) -> None:
        """``reload`` swapped pipelines: take batches from the new one from now on."""
        pipeline.attach_drain()
        with self._lock:
            self._pipeline, self._done = pipeline, 0

    def _run(self) -> None:
        from ats._runtime import count_error, suppress_this_context

        suppress_this_context()
        while True:
            with self._lock:
                pipeline, stopping = self._pipeline, self._stopping
            try:
                batch = pipeline.drain(0.0 if stopping else _POLL_S)
            except Exception as exc:
                count_error("drain", exc)
                batch = None
            if batch is None:
                if stopping:
                    return
                continue
            ok = self._plugins.process_batch(batch)
            with self._lock:
                self.batches += 1
                self.records += len(batch)
                self.hook_errors += 0 if ok else 1
                if pipeline is self._pipeline:
                    self._done += len(batch)
                self._lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Waits until every batch handed over so far went through the hook, at most ``timeout`` s."""
        if threading.current_thread() is self._thread:
            return True  # a hook calling ats.flush() must not wait for itself
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            target = self._pipeline.stats()["handoff_accepted"]
            while self._done < target and self._thread.is_alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, _POLL_S))
            return True

    def stop(self, timeout: float) -> bool:
        """After the pipeline's shutdown: hands what is left to the hook, then ends the thread."""
        with self._lock:
            self._stopping = True
        if threading.current_thread() is self._thread:
            return True
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()
