"""ATS plugin: Pydantic AI, through its own GenAI instrumentation.

Pydantic AI instruments agents itself (OpenTelemetry spans named per the GenAI conventions) when
``Agent._instrument_default`` (set by ``Agent.instrument_all``) holds ``InstrumentationSettings``.
The plugin sets that default to settings whose tracer provider is a private OpenTelemetry SDK
provider with one span processor, :class:`GenAISpanBridge`, which hands each span to
:class:`ats.genai.GenAIRecorder`.  Nothing reaches a global OpenTelemetry provider and an agent
that configures its own instrumentation keeps it.

=====================================  ===============================================
Pydantic AI span (``gen_ai.operation.name``)  ATS span
=====================================  ===============================================
``invoke_agent``                       ``invoke_agent {agent}`` (seed 003 agent records)
``chat``                               ``chat {model}`` with token usage
``execute_tool``                       ``execute_tool {tool}`` and a seed 003 task
other spans (``running tools`` ...)    none: children attach to the nearest recorded ancestor
=====================================  ===============================================

Only the attributes in :data:`KEPT` are copied.  Pydantic AI is told to leave content out
(``include_content``) unless ``genai.capture_content`` is true; then the content attributes are
copied too, scrubbed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Final

from ats import genai, hookimpl
from ats.instrumentation import Instrumentor, count_error

__all__ = ["GenAISpanBridge", "KEPT", "PydanticAIInstrumentor", "ats_instrumentors", "instrumentor"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-pydantic-ai"

#: Attributes copied from the framework's spans (no content).
KEPT: Final = frozenset({
    "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.response.id",
    "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.tool.call.id", "gen_ai.tool.type",
    "gen_ai.conversation.id", "gen_ai.request.temperature", "gen_ai.request.max_tokens",
    "gen_ai.request.top_p", "gen_ai.request.seed", "server.address", "server.port", "error.type",
})
#: Content attributes, copied (scrubbed) only with ``genai.capture_content``.
CONTENT: Final = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
})
_KINDS: Final = {"invoke_agent": genai.AGENT, "chat": genai.CHAT, "text_completion": genai.TEXT_COMPLETION,
                 "execute_tool": genai.TOOL}
_NAME_KEYS: Final = {genai.AGENT: "gen_ai.agent.name", genai.CHAT: "gen_ai.request.model",
                     genai.TEXT_COMPLETION: "gen_ai.request.model", genai.TOOL: "gen_ai.tool.name"}


def _kept(attributes: Any, capture: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in KEPT:
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            if value != "":
                out[key] = value
        elif capture and key in CONTENT:
            out[key] = genai.content(value)
    return out


class GenAISpanBridge:
    """An OpenTelemetry SDK ``SpanProcessor`` feeding :class:`ats.genai.GenAIRecorder`."""

    def __init__(self) -> None:
        self.enabled = True
        self.recorder = genai.GenAIRecorder(COMPONENT)

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if not self.enabled:
            return
        try:
            key = span.context.span_id
            parent = span.parent.span_id if span.parent is not None else None
            attributes = span.attributes or {}
            kind = _KINDS.get(str(attributes.get("gen_ai.operation.name", "")))
            if kind is None:
                self.recorder.skip(key, parent)
                return
            name = str(attributes.get(_NAME_KEYS[kind]) or "")
            self.recorder.start(key, parent, kind, name, _kept(attributes, False), start_ns=span.start_time)
        except Exception as exc:
            count_error("pydantic_ai.span_start", exc)

    def on_end(self, span: Any) -> None:
        try:
            key = span.context.span_id
            if not self.recorder.is_open(key):
                self.recorder.end(key)  # forgets a skipped span
                return
            attributes = span.attributes or {}
            kept = _kept(attributes, genai.capture_content())
            kind = _KINDS.get(str(attributes.get("gen_ai.operation.name", "")))
            name = str(attributes.get(_NAME_KEYS[kind]) or "") if kind is not None else None
            status = getattr(getattr(span, "status", None), "status_code", None)
            failed = status is not None and getattr(status, "name", "") == "ERROR"
            error_type = None
            message = None
            if failed:
                error_type = str(attributes.get("error.type") or "")
                for event in getattr(span, "events", ()) or ():
                    if event.name == "exception":
                        error_type = error_type or str(event.attributes.get("exception.type", ""))
                        message = str(event.attributes.get("exception.message", ""))
                        break
                if not message:
                    message = str(getattr(span.status, "description", "") or "")
                error_type = error_type.rsplit(".", 1)[-1] or "error"
            # Pydantic AI shows a tool's result only when it records content.
            result = attributes.get("gen_ai.tool.call.result", genai.UNKNOWN) if kind == genai.TOOL else None
            self.recorder.end(key, kept, error=error_type, error_message=message, result=result,
                              name=name or None, end_ns=span.end_time)
        except Exception as exc:
            count_error("pydantic_ai.span_end", exc)

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class PydanticAIInstrumentor(Instrumentor):
    """Sets ``Agent._instrument_default`` to instrumentation settings that report to ATS."""

    name = "pydantic_ai"
    target_modules = ("pydantic_ai.agent",)
    supported_versions = ">=1.0"
    distribution = "pydantic-ai-slim"

    def __init__(self) -> None:
        super().__init__()
        self.bridge: GenAISpanBridge | None = None

    def _patch(self, module: ModuleType) -> None:
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from pydantic_ai.models.instrumented import InstrumentationSettings

        # The SDK calls more than the documented methods (``_on_ending``): inherit its defaults.
        bridge_class = type("ATSSpanBridge", (GenAISpanBridge, SpanProcessor), {"__module__": __name__})
        bridge = bridge_class()
        provider = TracerProvider()
        provider.add_span_processor(bridge)
        settings = InstrumentationSettings(tracer_provider=provider, include_content=genai.capture_content(),
                                           include_binary_content=False)
        self.replace(module.Agent, "_instrument_default", settings)
        self.bridge = bridge

    def _unpatch(self, module: ModuleType) -> None:
        if self.bridge is not None:
            self.bridge.enabled = False
            self.bridge = None
        self.restore(module)


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = PydanticAIInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the Pydantic AI instrumentor to the ATS plugin host."""
    return [instrumentor]
