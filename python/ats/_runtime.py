"""Process-wide ATS state: start-up, flush, shutdown, reload, fork and exit handling.

``init`` builds the native pipeline from the validated configuration, loads the
plugins and lets them instrument their libraries. It starts the flusher thread —
importing ``ats`` never does. Everything here is idempotent and thread safe.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import sys
import threading
from ats import _native

# Not `typing.TYPE_CHECKING`: importing typing is a measurable part of `import ats`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path
    from typing import Any

    from ats._drain import BatchDrain
    from ats.config import Config
    from ats.plugins import PluginHost
    from ats.registry import Registry

__all__ = ["ErrorCounter", "Runtime", "count_error", "current", "flush", "init", "reload", "shutdown", "suppress_this_context",
           "suppressed"]

#: One registry for the life of the process: handles created before ``init`` keep working.
METRICS = _native.Metrics()


class ErrorCounter:
    """Counts failures inside ATS's own code. Each place reports once on stderr."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def count(self, where: str, exc: BaseException) -> None:
        with self._lock:
            n = self.counts.get(where, 0) + 1
            self.counts[where] = n
        if n == 1:
            print(f"ats: internal error in {where} ({type(exc).__name__}: {exc}); the program continues",
                  file=sys.stderr)

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())


#: Errors before/without a runtime are still counted.
ERRORS = ErrorCounter()


def count_error(where: str, exc: BaseException) -> None:
    ERRORS.count(where, exc)


class Runtime:
    """What ``init`` built: configuration, native pipeline, plugins, registry, counters."""

    __slots__ = ("config", "pipeline", "plugins", "metrics", "errors", "_registry", "_registry_built", "source",
                 "overrides", "drain")

    def __init__(
        self,
        config: Config,
        pipeline: _native.Pipeline,
        plugins: PluginHost,
        source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.plugins = plugins
        self.metrics: _native.Metrics = METRICS
        self.errors: ErrorCounter = ERRORS
        self._registry: Registry | None = None
        self._registry_built = False
        #: What ``init`` was given, so ``reload`` re-reads the same sources.
        self.source = source
        self.overrides: Mapping[str, Any] = dict(overrides or {})
        #: The ``ats_process_batch`` feeder; only exists while some plugin implements the hook.
        self.drain: BatchDrain | None = None

    @property
    def registry(self) -> Registry | None:
        """Event families (built-in, the application's ``app.*``, and the plugins'); spans and
        log records of unregistered events are rejected and counted here. Built on first use:
        a process that never records through the API does not pay for the family schemas."""
        if not self._registry_built:
            with _LOCK:
                if not self._registry_built:
                    self._registry = _build_registry(self.plugins)
                    self._registry_built = True
        return self._registry

    def ensure_drain(self) -> None:
        """Starts the batch drain once some plugin implements ``ats_process_batch``."""
        with _LOCK:
            if self.drain is not None or _RUNTIME is not self or not self.plugins.wants_batches():
                return
            from ats._drain import BatchDrain

            self.drain = BatchDrain(self.pipeline, self.plugins)


_LOCK = threading.RLock()
_RUNTIME: Runtime | None = None
#: Set while ATS itself does work an instrumentation would otherwise record (its own
#: store maintenance): telemetry about telemetry would loop.
_SUPPRESSED: contextvars.ContextVar[bool] = contextvars.ContextVar("ats_suppressed", default=False)


def current() -> Runtime | None:
    """The running runtime, or None before ``init`` / after ``shutdown`` / when disabled, and
    inside :func:`suppressed` (instrumentations record nothing there)."""
    if _SUPPRESSED.get():
        return None
    return _RUNTIME


def suppress_this_context() -> None:
    """From now on nothing in the current context is recorded (a thread of ATS's own)."""
    # The native per-call path reads the flag only once suppression has been used at all.
    _native.suppression_used()
    _SUPPRESSED.set(True)


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Nothing inside this block is recorded (like OpenTelemetry's suppress_instrumentation)."""
    _native.suppression_used()
    token = _SUPPRESSED.set(True)
    try:
        yield
    finally:
        _SUPPRESSED.reset(token)


def _pipeline_for(config: Config) -> _native.Pipeline:
    kwargs = config.pipeline_kwargs()
    # Only a configured OTLP exporter is passed: a pipeline without one takes no ``otlp`` argument.
    if kwargs.get("otlp") is None:
        kwargs.pop("otlp", None)
    return _native.Pipeline(**kwargs, metrics=METRICS)


def _activate(pipeline: _native.Pipeline) -> None:
    """Plugins' ``_native.driver_call`` records into ``pipeline`` from now on."""
    from ats.context import _CURRENT, _from_opentelemetry

    _native.activate(pipeline, _CURRENT, _SUPPRESSED, _from_opentelemetry)


def init(config: str | os.PathLike[str] | Mapping[str, Any] | None = None, /, **overrides: Any) -> Runtime | None:
    """Starts ATS once per process and returns the runtime (None when disabled by configuration).

    :param config: a configuration file path or a mapping; default: files and environment.
    :param overrides: keys that win over every other source (``sampling_ratio=0.1`` or
        ``**{"sampling.ratio": 0.1}``).
    :raises ats.config.ConfigError: a bad key or value, naming the key, the value and what is allowed.
    """
    global _RUNTIME
    from ats.config import load_config
    from ats.context import propagate_to_threads
    from ats.plugins import PluginHost

    with _LOCK:
        if _RUNTIME is not None:
            return _RUNTIME
        cfg = load_config(config, overrides)
        if cfg.disabled:
            return None
        pipeline = _pipeline_for(cfg)
        plugins = PluginHost()
        _RUNTIME = Runtime(cfg, pipeline, plugins, source=config, overrides=overrides)
        _activate(pipeline)
        _configure_side_queries(cfg)
        _start_resources(cfg)
        propagate_to_threads()
        _install_process_hooks()
    # Plugins run outside the lock: their hooks may call back into ats.
    try:
        plugins.load(disabled=cfg.plugins.disabled, allowed=cfg.plugins.allowed, trace_hooks=cfg.plugins.trace_hooks)
        plugins.configure(cfg)
        for instrumentor in plugins.instrumentors():
            try:
                instrumentor.instrument()
            except Exception as exc:
                count_error(f"instrument {getattr(instrumentor, 'name', instrumentor)!s}", exc)
    except Exception as exc:
        count_error("plugins", exc)
    rt = _RUNTIME
    if rt is not None:
        plugins.on_register = rt.ensure_drain
        rt.ensure_drain()
    return rt


def _configure_side_queries(cfg: Config) -> None:
    """``plans.*`` and ``capabilities.*``: what driver plugins may ask servers (``ats.side``)."""
    from ats import capabilities, plans

    p = cfg.plans
    plans.configure(plans.PlanSettings(p.enabled, p.latency_ms, p.interval_s, p.queue_size))
    capabilities.configure(cfg.capabilities.enabled)


def _start_resources(cfg: Config) -> None:
    """``resources.*``: the sampler thread (:mod:`ats.resources`) runs only when enabled."""
    if cfg.resources.enabled:
        from ats import resources

        resources.start(cfg.resources.interval_s)


def _stop_resources() -> None:
    resources = sys.modules.get("ats.resources")
    if resources is not None:
        resources.stop()


def _build_registry(plugins: PluginHost) -> Registry | None:
    try:
        from ats.registry import EventFamily, default_registry

        registry = default_registry(plugins)
        # The program's own spans (``ats.span``/``@ats.traced`` default names live under ``app.``).
        registry.register(EventFamily(
            "app", ("app.span", "app.event"), {"type": "object"}, "S1", "explicit_operator_export", "30d",
            "application", "spans and log records of the instrumented program itself",
        ))
        # ``ats.otel``: spans of OpenTelemetry instrumentations (their own names, statements
        # normalised, free text scrubbed) and records of the ``logging`` module.
        registry.register(EventFamily(
            "otel", ("otel.span",), {"type": "object"}, "S2", "explicit_operator_export", "30d",
            "ats.otel", "spans of OpenTelemetry SDK instrumentations recorded by ATSSpanProcessor",
        ))
        registry.register(EventFamily(
            "log", ("log.record",), {"type": "object"}, "S2", "explicit_operator_export", "30d",
            "ats.otel", "logging records recorded by ATSLogHandler (messages scrubbed)",
        ))
        return registry
    except Exception as exc:
        count_error("registry", exc)
        return None


_ENV_INIT_DONE = False


def init_once_from_environment() -> None:
    """``ats-run`` / ``import ats.auto``: initialise from files and environment, at most once."""
    global _ENV_INIT_DONE
    with _LOCK:
        if _ENV_INIT_DONE:
            return
        _ENV_INIT_DONE = True
    try:
        init()
    except Exception as exc:
        # A bad configuration is reported clearly, but the program still runs, uninstrumented.
        print(f"ats: not started: {exc}", file=sys.stderr)


def flush(timeout: float = 5.0) -> bool:
    """Waits until everything recorded so far reached the sinks (and ``ats_process_batch``),
    at most ``timeout`` seconds."""
    rt = _RUNTIME
    return True if rt is None else _flush(rt, timeout)


def _flush(rt: Runtime, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    ok = rt.pipeline.flush(timeout)
    drain = rt.drain
    if drain is not None:
        ok = drain.wait_idle(deadline - time.monotonic()) and ok
    return ok


def shutdown(timeout: float = 5.0) -> bool:
    """Uninstruments, drains and closes the sinks within ``timeout`` seconds; later calls are no-ops."""
    global _RUNTIME
    from ats.context import restore_threads

    with _LOCK:
        rt, _RUNTIME = _RUNTIME, None
        _native.deactivate()
    if rt is None:
        return True
    import time

    deadline = time.monotonic() + timeout
    drain = rt.drain
    if drain is not None:
        # Batch hooks see everything recorded so far before ats_shutdown.
        _flush(rt, timeout)
    try:
        rt.plugins.shutdown()
        for instrumentor in rt.plugins.instrumentors():
            try:
                instrumentor.uninstrument()
            except Exception as exc:
                count_error("uninstrument", exc)
    except Exception as exc:
        count_error("plugins.shutdown", exc)
    restore_threads()
    _stop_resources()
    ok = rt.pipeline.shutdown(max(deadline - time.monotonic(), 0.0))
    if drain is not None:
        ok = drain.stop(deadline - time.monotonic()) and ok
    return ok


def reload() -> bool:
    """Re-reads configuration and swaps in a pipeline built from it (sampling, redaction, sinks,
    export); the old one is drained first. Side queries, the resource sampler and ``ats_configure``
    get the new configuration; keys only a restart applies (:func:`ats.config.reloadable_keys`)
    are named on stderr. Returns False when the new configuration is invalid (the old settings
    stay, and the error is reported)."""
    with _RELOAD_LOCK:
        return _reload()


# A SIGHUP reload and a program's own ``reload()`` may overlap; one swap at a time.
_RELOAD_LOCK = threading.Lock()


def _reload() -> bool:
    from ats.config import load_config

    rt = _RUNTIME
    if rt is None:
        return False
    try:
        cfg = load_config(rt.source, rt.overrides)
        new_pipeline = _pipeline_for(cfg)
    except Exception as exc:
        print(f"ats: reload rejected: {exc}", file=sys.stderr)
        return False
    old, previous = rt.pipeline, rt.config
    rt.pipeline, rt.config = new_pipeline, cfg
    _activate(new_pipeline)
    drain = rt.drain
    if drain is not None:
        # Batches still queued in the old pipeline reach the hook before the switch.
        old.flush(cfg.shutdown.timeout_s)
        drain.wait_idle(cfg.shutdown.timeout_s)
        drain.switch(new_pipeline)
    old.shutdown(cfg.shutdown.timeout_s)
    _apply_to_the_rest(rt, previous, cfg)
    return True


def _apply_to_the_rest(rt: Runtime, previous: Config, cfg: Config) -> None:
    """After a reload: side queries, the resource sampler and the plugins see the new
    configuration; keys only a restart can apply are named on stderr."""
    from ats.config import reloadable_keys

    changed = cfg.changed_keys(previous)
    _configure_side_queries(cfg)
    if any(k.startswith("resources.") for k in changed):
        _stop_resources()
        _start_resources(cfg)
    try:
        rt.plugins.configure(cfg)
    except Exception as exc:
        count_error("plugins.configure", exc)
    pending = sorted(changed - reloadable_keys())
    if pending:
        print(f"ats: reload: {', '.join(pending)} take effect only at the next start", file=sys.stderr)


_HOOKS_INSTALLED = False


def _install_process_hooks() -> None:
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    _HOOKS_INSTALLED = True
    atexit.register(_at_exit)
    os.register_at_fork(after_in_child=_after_fork_in_child)
    _install_sighup()
    _install_sigterm()


def _at_exit() -> None:
    rt = _RUNTIME
    if rt is not None:
        shutdown(rt.config.shutdown.timeout_s)


def _after_fork_in_child() -> None:
    # The native pipeline rebuilds its ring and flusher by itself on first use. A
    # multiprocessing child leaves through os._exit, which skips atexit: flush there too.
    rt = _RUNTIME
    if rt is not None and rt.drain is not None:
        # The drain thread did not survive the fork; the child feeds its own batches. No
        # _LOCK here: another parent thread may have held it at the fork, and the child has
        # only this thread.
        from ats._drain import BatchDrain

        try:
            rt.drain = BatchDrain(rt.pipeline, rt.plugins)
        except Exception as exc:
            rt.drain = None
            count_error("fork", exc)
    if rt is not None:
        # The sampler thread did not survive the fork either.
        _start_resources(rt.config)
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        try:
            # multiprocessing clears the finalizers it inherited when the child's Process
            # starts (_bootstrap), then runs its after-fork callbacks: register from there.
            mp_util.register_after_fork(_FORK_TOKEN, _finalize_multiprocessing_child)
        except Exception as exc:
            count_error("fork", exc)


class _ForkToken:
    """Kept alive for the process's lifetime: multiprocessing holds after-fork callbacks weakly."""


_FORK_TOKEN = _ForkToken()


def _finalize_multiprocessing_child(_token: object) -> None:
    import multiprocessing.util

    # Runs in multiprocessing's own exit path (os._exit follows, atexit does not run).
    multiprocessing.util.Finalize(None, _at_exit, exitpriority=-1000)


def _install_sighup() -> None:
    import signal

    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return
    # Only take SIGHUP when the program has not claimed it. SIG_IGN counts as claimed: it is
    # what ``nohup`` hands down, and a process started that way asked for hangups to change nothing.
    if signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None):
        return
    signal.signal(signal.SIGHUP, lambda _sig, _frame: threading.Thread(target=reload, daemon=True).start())


def _install_sigterm() -> None:
    """A SIGTERM (``docker stop``, ``kill``, a supervisor) skips atexit, losing what the ring still
    holds. When the program has not claimed SIGTERM, ATS flushes within its shutdown deadline and
    then dies of the same signal, so the exit status the parent sees is unchanged."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return

    def on_sigterm(signum: int, _frame: object) -> None:
        try:
            rt = _RUNTIME
            if rt is not None:
                shutdown(rt.config.shutdown.timeout_s)
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def home() -> Path:
    from pathlib import Path

    rt = _RUNTIME
    return Path(rt.config.home) if rt is not None else Path(os.environ.get("ATS_HOME", ".ats"))
