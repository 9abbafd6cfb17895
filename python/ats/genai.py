"""GenAI spans and the seed 003 agent/task records, shared by the agent framework plugins.

Frameworks report runs through callbacks (LangChain callback handlers, the OpenAI Agents SDK's
tracing processors, ...): a start and an end, each carrying the run's id and its parent's.
:class:`GenAIRecorder` turns those into ATS spans named per the OpenTelemetry GenAI conventions:

======================  ==========================  =========================================
what                    span name                   ``gen_ai.operation.name``
======================  ==========================  =========================================
an agent / graph run    ``invoke_agent {name}``     ``invoke_agent``
a chat model call       ``chat {model}``            ``chat`` (``text_completion`` for LLMs)
a tool call             ``execute_tool {tool}``     ``execute_tool``
a graph step            ``step {node}``             none (a task, below)
======================  ==========================  =========================================

A span's parent is the span of the run's parent run when the recorder knows it, else the
current ATS (or OpenTelemetry) span of the calling context, so a framework called inside
``ats.span`` or an instrumented request joins that trace.

Agents and tasks (seed 003): starting an agent run records ``agent.lifecycle`` ``idle ->
running`` and its end ``running -> idle`` (``running -> error`` when it failed), each with the
process's ``resource_usage`` (:mod:`ats.resources`); the gauge ``agent.active`` counts agent runs
in progress.  Each tool call and graph step inside an agent is a task: ``task.assigned`` at its
start, ``task.completed`` and ``task.execution`` at its end, and the metrics
``task.assigned.total``, ``task.completed.total`` {agent_type, task_type, success},
``task.failed.total`` {agent_type, error_type} and ``task.execution_time_ms`` {task_type} with the
seed's buckets.  ``agent_id`` is the agent run's id and ``agent_type`` the agent's name.  The
seed's ``priority``, ``estimated_duration_ms`` and ``dependencies`` of ``task.assigned`` are left
out: no framework states them, and a made-up value would be worse than none.

Model calls also feed the OpenTelemetry GenAI client metrics ``gen_ai.client.operation.duration``
(s) and, when the model reported token counts, ``gen_ai.client.token.usage`` (one point per
``gen_ai.token.type``), with the buckets of the conventions (v1.41).

Content (prompts, completions, tool arguments and results) is never recorded unless
``genai.capture_content`` is true; then it is scrubbed (:func:`ats.privacy.scrub`) and cut to
:data:`MAX_CONTENT_CHARS`.  Without it only sizes are kept (``result_size_bytes``).

Everything here is called from framework callbacks on app threads: no I/O, no blocking, and no
exception escapes (failures are counted by :func:`ats.instrumentation.count_error`).  Open runs
are bounded by :data:`MAX_OPEN_RUNS`; a run beyond that is not recorded and counted.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Hashable, Mapping
from typing import Any, Final

from ats import _runtime, resources
from ats._native import Pipeline
from ats.context import _CURRENT, SpanContext, current_span
from ats.instrumentation import count_error

__all__ = [
    "AGENT",
    "CHAT",
    "GenAIRecorder",
    "MAX_CONTENT_CHARS",
    "MAX_OPEN_RUNS",
    "STEP",
    "TASK_EXECUTION_BUCKETS_MS",
    "TEXT_COMPLETION",
    "TOOL",
    "UNKNOWN",
    "capture_content",
    "content",
]

AGENT: Final = "invoke_agent"
CHAT: Final = "chat"
TEXT_COMPLETION: Final = "text_completion"
TOOL: Final = "execute_tool"
#: A graph step: an INTERNAL span named after the step, and a seed 003 task.
STEP: Final = "step"

#: ``result`` of :meth:`GenAIRecorder.end` when the framework does not show it: no
#: ``result_size_bytes`` is recorded (rather than a wrong 0).
UNKNOWN: Final = object()

#: Seed 003 "Histogram Metrics": ``task.execution_time_ms`` buckets.
TASK_EXECUTION_BUCKETS_MS: Final = [100.0, 500.0, 1000.0, 5000.0, 10000.0, 30000.0, 60000.0]
#: ``gen_ai.client.token.usage`` / ``gen_ai.client.operation.duration`` buckets (GenAI conventions v1.41).
TOKEN_USAGE_BUCKETS: Final = [float(4 ** i) for i in range(14)]
OPERATION_DURATION_BUCKETS_S: Final = [0.01 * 2 ** i for i in range(14)]
MAX_OPEN_RUNS: Final = 10_000
MAX_CONTENT_CHARS: Final = 16_384

_STATUS_OK, _STATUS_ERROR = 1, 2
_new_span_id = Pipeline.new_span_id
_SEVERITY_INFO, _SEVERITY_ERROR = 9, 17


def capture_content() -> bool:
    """``genai.capture_content`` of the running configuration (False when ATS is not running)."""
    rt = _runtime.current()
    return rt is not None and rt.config.genai.capture_content


def content(value: Any) -> str:
    """``value`` as scrubbed text for an opt-in content attribute (JSON when it is structured)."""
    from ats.privacy import scrub

    if isinstance(value, str):
        text = value
    else:
        import json

        try:
            text = json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = str(value)
    return scrub(text[:MAX_CONTENT_CHARS])


def _size(value: Any) -> int:
    """Byte size of a result as text (its UTF-8 length), without storing it."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else str(value)
    return len(text.encode("utf-8", "replace"))


class _Run:
    """One open run. A plain slotted class: ``dataclasses`` is a measurable start-up import
    under ``ats-run``, and plugins import this module when they load."""

    __slots__ = ("kind", "name", "trace_id", "span_id", "parent_span_id", "sampled", "start_ns", "attributes",
                 "agent", "span_name", "agent_type", "task_type", "ctx", "token")

    def __init__(self, kind: str, name: str, trace_id: str, span_id: int, parent_span_id: int, sampled: bool,
                 start_ns: int, attributes: dict[str, Any], agent: _Run | None) -> None:
        self.kind = kind
        self.name = name
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.start_ns = start_ns
        self.attributes = attributes
        self.agent = agent
        self.span_name = ""
        #: Agent runs: the agent's name (seed 003 agent_type).
        self.agent_type = ""
        self.task_type = ""
        self.ctx: SpanContext | None = None
        self.token: contextvars.Token[SpanContext | None] | None = None


#: Runs that ended while another run was current in their context (out of order), by span id:
#: when the current one ends, they are skipped instead of coming back. Bounded.
_ENDED_EARLY: dict[int, contextvars.Token[SpanContext | None]] = {}
_ENDED_EARLY_MAX: Final = 1024


def _restore(run: _Run) -> None:
    """The run stops being the current span. Runs normally end last-in first-out in one context;
    one that ends while another is current is remembered and skipped when that one ends, so a
    run that is over never comes back as the current span."""
    token = run.token
    if token is None:
        return
    if _CURRENT.get() is not run.ctx:
        if len(_ENDED_EARLY) >= _ENDED_EARLY_MAX:
            _ENDED_EARLY.clear()
        _ENDED_EARLY[run.span_id] = token
        return
    try:
        _CURRENT.reset(token)
        while True:
            current = _CURRENT.get()
            early = _ENDED_EARLY.pop(current.span_id, None) if current is not None else None
            if early is None:
                return
            _CURRENT.reset(early)
    except ValueError:  # a token of another context (a framework's callback on another task)
        pass


def _hex(span_id: int) -> str:
    return f"{span_id:016x}"


class GenAIRecorder:
    """Open runs of one framework integration, keyed by the framework's run ids.

    :param component: the records' component (the plugin's distribution name).
    :param provider: default ``gen_ai.provider.name`` when a run does not name one.
    """

    def __init__(self, component: str, provider: str | None = None) -> None:
        self.component = component
        self.provider = provider
        self._runs: dict[Hashable, _Run] = {}
        # key of a run that is not a span -> key of its nearest recorded ancestor (None: none)
        self._aliases: dict[Hashable, Hashable | None] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    # ------------------------------------------------------------------ runs that are not spans

    def skip(self, key: Hashable, parent_key: Hashable | None) -> None:
        """A run that is no span (a sequence, a prompt template ...): its children attach to
        the nearest recorded ancestor. Bounded: orphans (runs never ended) are forgotten."""
        with self._lock:
            target = self._resolve(parent_key)
            if len(self._aliases) >= MAX_OPEN_RUNS:
                self._aliases.clear()
            self._aliases[key] = target

    def known(self, key: Hashable) -> bool:
        """True while ``key`` is an open run or a skipped one."""
        with self._lock:
            return key in self._runs or key in self._aliases

    def _resolve(self, key: Hashable | None) -> Hashable | None:
        # Under self._lock.
        if key is None or key in self._runs:
            return key
        return self._aliases.get(key)

    # ------------------------------------------------------------------ runs

    def start(
        self,
        key: Hashable,
        parent_key: Hashable | None,
        kind: str,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        start_ns: int | None = None,
    ) -> bool:
        """A run started. ``kind`` is :data:`AGENT`, :data:`CHAT`, :data:`TEXT_COMPLETION`,
        :data:`TOOL` or :data:`STEP`; ``name`` the agent, model, tool or step name. Returns
        False when nothing is recorded (ATS not running, too many open runs, an ATS error)."""
        try:
            rt = _runtime.current()
            if rt is None:
                return False
            with self._lock:
                if len(self._runs) >= MAX_OPEN_RUNS:
                    self.dropped += 1
                    return False
                resolved = self._resolve(parent_key)
                parent = self._runs.get(resolved) if resolved is not None else None
            if parent is not None:
                trace_id, parent_span_id, sampled = parent.trace_id, parent.span_id, parent.sampled
                agent = parent if parent.kind == AGENT else parent.agent
            else:
                ctx = current_span()
                if ctx is not None:
                    trace_id, parent_span_id, sampled = ctx.trace_id, ctx.span_id, ctx.sampled
                else:
                    trace_id, parent_span_id, sampled = rt.pipeline.new_trace_id(), 0, True
                agent = None
            run = _Run(kind, name, trace_id, _new_span_id(), parent_span_id, sampled,
                       start_ns if start_ns is not None else time.time_ns(), dict(attributes or {}), agent)
            self._name_run(run)
            with self._lock:
                self._runs[key] = run
            # Current for what the run does (a tool's database query, a model's HTTP call):
            # the frameworks run the work in this context or in a copy made after this call.
            run.ctx = SpanContext(trace_id, run.span_id, sampled)
            run.token = _CURRENT.set(run.ctx)
        except Exception as exc:
            count_error(f"{self.component}.start", exc)
            return False
        try:
            # The run is open from here on: whatever fails below, its end still closes it.
            if kind == AGENT:
                self._agent_started(rt, run)
            elif kind in (TOOL, STEP) and agent is not None:
                self._task_assigned(rt, run, agent)
        except Exception as exc:
            count_error(f"{self.component}.start", exc)
        return True

    def set_attributes(self, key: Hashable, attributes: Mapping[str, Any]) -> None:
        """Adds attributes to an open run (a response model, token usage ...)."""
        with self._lock:
            run = self._runs.get(key)
        if run is not None:
            run.attributes.update(attributes)

    def is_open(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._runs

    def end(
        self,
        key: Hashable,
        attributes: Mapping[str, Any] | None = None,
        *,
        error: BaseException | str | None = None,
        error_message: str | None = None,
        result: Any = None,
        name: str | None = None,
        end_ns: int | None = None,
    ) -> None:
        """A run ended: records its span (status error with ``error.type`` when ``error`` is
        given: an exception, or an error type name with ``error_message``) and, for agents and
        tasks, the seed 003 records. ``result`` is only measured (``result_size_bytes``), never
        stored. ``name``: the model/agent/tool name when only the end knows it."""
        try:
            with self._lock:
                run = self._runs.pop(key, None)
                if run is None:
                    self._aliases.pop(key, None)
            if run is None:
                return
            _restore(run)
            if run.kind == AGENT:
                # First: a failure below must not leave the agent counted as active.
                self._active(-1)
            rt = _runtime.current()
            if rt is None:
                return
            end = end_ns if end_ns is not None else time.time_ns()
            attrs = run.attributes
            if attributes:
                attrs.update(attributes)
            if name and name != run.name:
                run.name = name
                if run.kind in (CHAT, TEXT_COMPLETION):
                    attrs["gen_ai.request.model"] = name
                self._name_run(run)
            error_type = None
            if error is not None:
                error_type = error if isinstance(error, str) else type(error).__qualname__
                attrs["error.type"] = error_type
            registry = rt.registry
            if registry is not None and not registry.accept(run.span_name):
                return
            rt.pipeline.record_span(
                run.span_name, self.component, run.trace_id, run.span_id, run.parent_span_id,
                run.start_ns, end, _STATUS_ERROR if error is not None else _STATUS_OK, attrs,
                parent_sampled=run.sampled,
            )
            if run.kind == AGENT:
                self._agent_ended(rt, run, error_type)
            elif run.kind in (TOOL, STEP) and run.agent is not None:
                self._task_ended(rt, run, run.agent, end, error, error_type, error_message, result)
            elif run.kind in (CHAT, TEXT_COMPLETION):
                _client_metrics(attrs, (end - run.start_ns) / 1e9, error_type)
        except Exception as exc:
            count_error(f"{self.component}.end", exc)

    def span_id(self, key: Hashable) -> int | None:
        """The span id of an open run (tests, and plugins linking their own records)."""
        with self._lock:
            run = self._runs.get(key)
        return run.span_id if run is not None else None

    # ------------------------------------------------------------------ naming

    def _name_run(self, run: _Run) -> None:
        attrs = run.attributes
        kind = run.kind
        if kind == STEP:
            run.span_name = f"{STEP} {run.name}"
            run.task_type = run.name
            return
        attrs.setdefault("gen_ai.operation.name", kind)
        if kind == AGENT:
            attrs.setdefault("gen_ai.agent.name", run.name)
            attrs.setdefault("gen_ai.agent.id", _hex(run.span_id))
            run.agent_type = run.name
        elif kind == TOOL:
            attrs.setdefault("gen_ai.tool.name", run.name)
            attrs.setdefault("gen_ai.tool.type", "function")
            run.task_type = TOOL
        elif run.name:
            attrs.setdefault("gen_ai.request.model", run.name)
        if self.provider is not None and kind in (AGENT, CHAT, TEXT_COMPLETION):
            attrs.setdefault("gen_ai.provider.name", self.provider)
        run.span_name = f"{kind} {run.name}" if run.name else kind

    # ------------------------------------------------------------------ seed 003

    def _log(self, rt: _runtime.Runtime, event: str, component: str, run: _Run, fields: dict[str, Any],
             severity: int = _SEVERITY_INFO) -> None:
        registry = rt.registry
        if registry is not None and not registry.accept(event):
            return
        rt.pipeline.emit_log(event, component, severity, "", time.time_ns(), run.trace_id, run.span_id, fields)

    def _active(self, delta: int) -> int:
        global _ACTIVE_AGENTS
        with _ACTIVE_LOCK:
            _ACTIVE_AGENTS = max(_ACTIVE_AGENTS + delta, 0)
            active = _ACTIVE_AGENTS
        _metrics().agent_active.set(float(active))
        return active

    def _lifecycle(self, rt: _runtime.Runtime, run: _Run, state_from: str, state_to: str, reason: str,
                   severity: int = _SEVERITY_INFO) -> None:
        fields: dict[str, Any] = {
            "agent_id": _hex(run.span_id), "agent_type": run.agent_type,
            "state_from": state_from, "state_to": state_to, "transition_reason": reason,
        }
        usage = resources.usage()
        if usage is not None:
            fields.update(usage.as_fields())
        self._log(rt, "agent.lifecycle", "agent", run, fields, severity)

    def _agent_started(self, rt: _runtime.Runtime, run: _Run) -> None:
        self._active(+1)
        self._lifecycle(rt, run, "idle", "running", "invoked")

    def _agent_ended(self, rt: _runtime.Runtime, run: _Run, error_type: str | None) -> None:
        if error_type is None:
            self._lifecycle(rt, run, "running", "idle", "completed")
        else:
            self._lifecycle(rt, run, "running", "error", error_type, _SEVERITY_ERROR)

    def _task_assigned(self, rt: _runtime.Runtime, run: _Run, agent: _Run) -> None:
        self._log(rt, "task.assigned", "scheduler", run, {
            "task_id": _hex(run.span_id), "agent_id": _hex(agent.span_id), "task_type": run.task_type,
        })
        _metrics().assigned.add(
            1, {"agent_type": agent.agent_type, "task_type": run.task_type})

    def _task_ended(self, rt: _runtime.Runtime, run: _Run, agent: _Run, end_ns: int,
                    error: BaseException | str | None, error_type: str | None, error_message: str | None,
                    result: Any) -> None:
        duration_ms = (end_ns - run.start_ns) / 1e6
        success = error is None
        task_id, agent_id = _hex(run.span_id), _hex(agent.span_id)
        completed: dict[str, Any] = {"task_id": task_id, "agent_id": agent_id, "duration_ms": duration_ms}
        if result is not UNKNOWN:
            completed["result_size_bytes"] = _size(result)
        completed["success"] = success
        execution: dict[str, Any] = {
            "task_id": task_id, "agent_id": agent_id, "task_type": run.task_type,
            "duration_ms": duration_ms, "success": success,
        }
        if error is not None:
            from ats.privacy import scrub

            message = error_message if error_message is not None else str(error)
            completed["error_message"] = scrub(message[:4096])
            execution["error_type"] = error_type or "error"
        usage = resources.usage()
        if usage is not None:
            execution.update(usage.as_fields())
        severity = _SEVERITY_INFO if success else _SEVERITY_ERROR
        self._log(rt, "task.completed", "scheduler", run, completed, severity)
        self._log(rt, "task.execution", "task_scheduler", run, execution, severity)
        m = _metrics()
        m.completed.add(
            1, {"agent_type": agent.agent_type, "task_type": run.task_type, "success": str(success).lower()})
        if not success:
            m.failed.add(
                1, {"agent_type": agent.agent_type, "error_type": error_type or "error"})
        m.execution_time.record(
            duration_ms, {"task_type": run.task_type})


_ACTIVE_LOCK = threading.Lock()
_ACTIVE_AGENTS = 0


class _Metrics:
    """The seed 003 metric handles, created once (a registry lookup per record is wasted work)."""

    def __init__(self) -> None:
        m = _runtime.METRICS
        self.agent_active = m.gauge("agent.active", "1")
        self.assigned = m.counter("task.assigned.total", "1")
        self.completed = m.counter("task.completed.total", "1")
        self.failed = m.counter("task.failed.total", "1")
        self.execution_time = m.histogram("task.execution_time_ms", "ms", TASK_EXECUTION_BUCKETS_MS)
        # OpenTelemetry GenAI client metrics (semantic conventions v1.41).
        self.token_usage = m.histogram("gen_ai.client.token.usage", "{token}", TOKEN_USAGE_BUCKETS)
        self.operation_duration = m.histogram("gen_ai.client.operation.duration", "s", OPERATION_DURATION_BUCKETS_S)


_METRIC_LABELS: Final = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                         "gen_ai.response.model")


def _client_metrics(attrs: Mapping[str, Any], duration_s: float, error_type: str | None) -> None:
    """``gen_ai.client.operation.duration`` and, when the model reported counts (never estimated),
    ``gen_ai.client.token.usage`` with one point per ``gen_ai.token.type``."""
    labels = {k: str(attrs[k]) for k in _METRIC_LABELS if k in attrs}
    m = _metrics()
    if error_type is not None:
        m.operation_duration.record(duration_s, {**labels, "error.type": error_type})
    else:
        m.operation_duration.record(duration_s, labels)
    for token_type, key in (("input", "gen_ai.usage.input_tokens"), ("output", "gen_ai.usage.output_tokens")):
        count = attrs.get(key)
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            m.token_usage.record(float(count), {**labels, "gen_ai.token.type": token_type})


_METRICS: _Metrics | None = None


def _metrics() -> _Metrics:
    global _METRICS
    if _METRICS is None:
        _METRICS = _Metrics()
    return _METRICS
