"""ATS plugin: the OpenAI Agents SDK (``openai-agents``, module ``agents``), as a tracing processor.

The SDK traces its own runs (agents, model calls, tools, handoffs, guardrails) and hands every
span to the processors registered with ``agents.add_trace_processor``.  The plugin adds one
:class:`ATSTracingProcessor` when ``agents`` is imported; it turns the SDK's spans into ATS spans
through :class:`ats.genai.GenAIRecorder`:

==========================  ==========================================================
SDK span data               ATS span
==========================  ==========================================================
``AgentSpanData``           ``invoke_agent {agent name}`` (``gen_ai.conversation.id`` = the
                            trace's ``group_id``)
``GenerationSpanData``      ``chat {model}`` with token usage
``ResponseSpanData``        ``chat {model}`` with the response's model, id and token usage
``FunctionSpanData``        ``execute_tool {tool}`` (``gen_ai.tool.call.id`` from the SDK's
                            ``ToolContext``) and a seed 003 task
others                      none: their children attach to the nearest recorded ancestor
==========================  ==========================================================

The SDK's spans are also kept by its other processors (its OpenAI exporter): this one neither
replaces nor blocks them.  ``gen_ai.provider.name`` is ``openai`` (the SDK's models are OpenAI's;
another provider's model wrapped in the SDK is still reported through the SDK's OpenAI types).
Model inputs and outputs and tool arguments and results are stored only with
``genai.capture_content`` (scrubbed).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final

from ats import genai, hookimpl
from ats.instrumentation import Instrumentor, count_error

__all__ = ["ATSTracingProcessor", "OpenAIAgentsInstrumentor", "ats_instrumentors", "instrumentor"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-openai-agents"
PROVIDER: Final = "openai"
_MAX_TRACES: Final = 10_000
#: The call id of the tool call being run in this context (set where the SDK builds its ToolContext).
_TOOL_CALL_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("ats_openai_agents_call_id", default=None)

#: SDK span type -> error.type when the SDK reports a failure (it gives a message, not a class).
_ERROR_TYPES: Final[Mapping[str, str]] = {
    "agent": "agent_error", "function": "tool_error", "generation": "model_error", "response": "model_error",
}


def _usage(usage: Any) -> dict[str, Any]:
    """``gen_ai.usage.*`` from a usage dict (generation spans) or object (Responses API)."""
    if usage is None:
        return {}
    get = usage.get if isinstance(usage, Mapping) else (lambda k, d=None: getattr(usage, k, d))
    input_tokens = get("input_tokens", None)
    if input_tokens is None:
        input_tokens = get("prompt_tokens", None)
    output_tokens = get("output_tokens", None)
    if output_tokens is None:
        output_tokens = get("completion_tokens", None)
    attrs: dict[str, Any] = {}
    if isinstance(input_tokens, int):
        attrs["gen_ai.usage.input_tokens"] = input_tokens
    if isinstance(output_tokens, int):
        attrs["gen_ai.usage.output_tokens"] = output_tokens
    return attrs


class ATSTracingProcessor:
    """An ``agents.tracing.TracingProcessor`` (duck-typed: the SDK calls these six methods)."""

    def __init__(self) -> None:
        self.enabled = True
        self.recorder = genai.GenAIRecorder(COMPONENT, provider=PROVIDER)
        self._groups: dict[str, str] = {}  # trace id -> group id (the conversation)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ traces

    def on_trace_start(self, trace: Any) -> None:
        try:
            group = getattr(trace, "group_id", None)
            if self.enabled and isinstance(group, str) and group:
                with self._lock:
                    if len(self._groups) >= _MAX_TRACES:
                        self._groups.clear()
                    self._groups[trace.trace_id] = group
        except Exception as exc:
            count_error("openai_agents.trace_start", exc)

    def on_trace_end(self, trace: Any) -> None:
        with self._lock:
            self._groups.pop(getattr(trace, "trace_id", ""), None)

    # ------------------------------------------------------------------ spans

    def on_span_start(self, span: Any) -> None:
        if not self.enabled:
            return
        try:
            data = span.span_data
            kind = getattr(data, "type", "")
            key, parent = span.span_id, span.parent_id
            attrs: dict[str, Any] = {}
            if kind == "agent":
                with self._lock:
                    group = self._groups.get(span.trace_id)
                if group is not None:
                    attrs["gen_ai.conversation.id"] = group
                self.recorder.start(key, parent, genai.AGENT, str(data.name), attrs)
            elif kind == "generation":
                self.recorder.start(key, parent, genai.CHAT, str(data.model or ""), attrs)
            elif kind == "response":
                self.recorder.start(key, parent, genai.CHAT, "", attrs)
            elif kind == "function":
                _TOOL_CALL_ID.set(None)  # the next ToolContext built in this span names its call
                self.recorder.start(key, parent, genai.TOOL, str(data.name), attrs)
            else:
                self.recorder.skip(key, parent)
        except Exception as exc:
            count_error("openai_agents.span_start", exc)

    def on_span_end(self, span: Any) -> None:
        try:
            data = span.span_data
            kind = getattr(data, "type", "")
            key = span.span_id
            if not self.recorder.is_open(key):
                self.recorder.end(key)  # forgets a skipped span
                return
            capture = genai.capture_content()
            attrs: dict[str, Any] = {}
            name: str | None = None
            result: Any = None
            if kind == "generation":
                attrs.update(_usage(data.usage))
                if data.model:
                    attrs["gen_ai.response.model"] = str(data.model)
                if capture:
                    attrs["gen_ai.input.messages"] = genai.content(data.input)
                    attrs["gen_ai.output.messages"] = genai.content(data.output)
            elif kind == "response":
                response = data.response
                attrs.update(_usage(getattr(data, "usage", None)))
                if response is not None:
                    if not attrs:
                        attrs.update(_usage(getattr(response, "usage", None)))
                    model = getattr(response, "model", None)
                    if isinstance(model, str) and model:
                        name = model
                        attrs["gen_ai.response.model"] = model
                    response_id = getattr(response, "id", None)
                    if isinstance(response_id, str) and response_id:
                        attrs["gen_ai.response.id"] = response_id
                    if capture:
                        attrs["gen_ai.output.messages"] = genai.content(
                            [getattr(o, "model_dump", lambda: o)() for o in getattr(response, "output", [])])
                if capture and getattr(data, "input", None) is not None:
                    attrs["gen_ai.input.messages"] = genai.content(data.input)
            elif kind == "function":
                call_id = _TOOL_CALL_ID.get()
                if call_id is not None:
                    attrs["gen_ai.tool.call.id"] = call_id
                result = data.output
                # The SDK fills in the arguments once the call ran.
                if capture and data.input is not None:
                    attrs["gen_ai.tool.call.arguments"] = genai.content(data.input)
                if capture and data.output is not None:
                    attrs["gen_ai.tool.call.result"] = genai.content(data.output)
            error = span.error
            if error:
                message = error.get("message") if isinstance(error, Mapping) else str(error)
                self.recorder.end(key, attrs, error=_ERROR_TYPES.get(kind, "error"),
                                  error_message=str(message or ""), result=result, name=name)
            else:
                self.recorder.end(key, attrs, result=result, name=name)
        except Exception as exc:
            count_error("openai_agents.span_end", exc)

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self) -> None:
        return None


class OpenAIAgentsInstrumentor(Instrumentor):
    """Adds :class:`ATSTracingProcessor` to the SDK's trace provider when ``agents`` is imported."""

    name = "openai_agents"
    target_modules = ("agents",)
    supported_versions = ">=0.2"
    distribution = "openai-agents"

    def __init__(self) -> None:
        super().__init__()
        self.processor: ATSTracingProcessor | None = None

    def _patch(self, module: ModuleType) -> None:
        processor = ATSTracingProcessor()
        module.add_trace_processor(processor)
        self.processor = processor
        self._patch_tool_context()

    def _patch_tool_context(self) -> None:
        """The SDK's function spans carry no tool call id, but the ``ToolContext`` it builds
        inside the span (same task) does: remember it for the span's end."""
        try:
            from agents.tool_context import ToolContext
        except ImportError:
            return
        original = ToolContext.__dict__.get("from_agent_context")
        func = getattr(original, "__func__", None)
        if func is None:
            return

        def from_agent_context(cls: Any, context: Any, tool_call_id: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(tool_call_id, str):
                _TOOL_CALL_ID.set(tool_call_id)
            return func(cls, context, tool_call_id, *args, **kwargs)

        self.replace(ToolContext, "from_agent_context", classmethod(from_agent_context))

    def _unpatch(self, module: ModuleType) -> None:
        self.restore()
        processor, self.processor = self.processor, None
        if processor is None:
            return
        processor.enabled = False
        # The SDK has no remove_trace_processor: take ours out of its multi-processor.
        try:
            from agents.tracing import get_trace_provider

            multi: Any = getattr(get_trace_provider(), "_multi_processor", None)
            processors = getattr(multi, "_processors", None)
            if multi is not None and processors is not None:
                multi._processors = tuple(p for p in processors if p is not processor)
        except Exception as exc:
            count_error("openai_agents.uninstrument", exc)


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = OpenAIAgentsInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the OpenAI Agents SDK instrumentor to the ATS plugin host."""
    return [instrumentor]
