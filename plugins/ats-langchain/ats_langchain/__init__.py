"""ATS plugin: LangChain and LangGraph, through a callback handler every run gets by itself.

``langchain_core`` builds the callback manager of every run in ``CallbackManager.configure``,
which adds the handler of each hook registered with ``langchain_core.tracers.context.
register_configure_hook`` whose context variable holds one.  The plugin registers a context
variable whose *default* is its handler, so every run in every thread and task is traced with no
change to the user's code.  Uninstrumenting removes the hook; a handler already attached to a
run records nothing more.

Runs become spans of :class:`ats.genai.GenAIRecorder`:

* the outermost chain run (a LangGraph graph, an agent executor, a chain invoked on its own) ->
  ``invoke_agent {run name}`` (``gen_ai.agent.name``; ``gen_ai.conversation.id`` from the
  ``thread_id`` / ``conversation_id`` / ``session_id`` in the run's metadata);
* a LangGraph node (a chain run named like its ``langgraph_node`` metadata) -> a span named
  after the node and a seed 003 task;
* a chat model run -> ``chat {model}``, an LLM run -> ``text_completion {model}``, with
  ``gen_ai.provider.name`` (from LangChain's ``ls_provider``, mapped to the OpenTelemetry
  values), ``gen_ai.request.model``, ``gen_ai.response.model``, token usage and finish reasons;
* a tool run -> ``execute_tool {tool}`` with ``gen_ai.tool.call.id`` and a seed 003 task.

Other chain runs (sequences, prompt templates, channel writes) are not spans: their children
attach to the nearest recorded ancestor.  Prompts, completions, tool arguments and results are
stored only with ``genai.capture_content`` (scrubbed).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ats import genai, hookimpl
from ats.instrumentation import Instrumentor, count_error

if TYPE_CHECKING:
    # Only for annotations: importing uuid (and platform) is measurable at start-up.
    from uuid import UUID

__all__ = ["ATSCallbackHandler", "LangChainInstrumentor", "ats_instrumentors", "instrumentor"]

__version__ = "0.1.0"

COMPONENT: Final = "ats-langchain"

#: LangChain's ``ls_provider`` -> ``gen_ai.provider.name`` (OpenTelemetry GenAI well-known values).
PROVIDERS: Final[Mapping[str, str]] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}

_CONVERSATION_KEYS: Final = ("thread_id", "conversation_id", "session_id")


def provider_name(ls_provider: object) -> str | None:
    if not isinstance(ls_provider, str) or not ls_provider:
        return None
    return PROVIDERS.get(ls_provider.lower(), ls_provider.lower())


def _usage(generations: Sequence[Sequence[Any]], llm_output: Mapping[str, Any] | None) -> dict[str, Any]:
    """Token usage, response model and finish reasons of an ``LLMResult``."""
    attrs: dict[str, Any] = {}
    input_tokens = output_tokens = 0
    found = False
    reasons: list[str] = []
    for gens in generations:
        for gen in gens:
            message = getattr(gen, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                input_tokens += int(usage.get("input_tokens", 0))
                output_tokens += int(usage.get("output_tokens", 0))
                found = True
            meta = getattr(message, "response_metadata", None) or {}
            model = meta.get("model_name") or meta.get("model")
            if isinstance(model, str) and model:
                attrs["gen_ai.response.model"] = model
            info = getattr(gen, "generation_info", None) or {}
            reason = info.get("finish_reason") or meta.get("finish_reason") or meta.get("stop_reason")
            if isinstance(reason, str):
                reasons.append(reason)
            response_id = getattr(message, "id", None)
            if isinstance(response_id, str) and response_id and "gen_ai.response.id" not in attrs:
                attrs["gen_ai.response.id"] = response_id
    if not found and llm_output:
        usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if isinstance(usage, Mapping) and usage:
            input_tokens = int(usage.get("prompt_tokens", usage.get("input_tokens", 0)))
            output_tokens = int(usage.get("completion_tokens", usage.get("output_tokens", 0)))
            found = True
    if llm_output and "gen_ai.response.model" not in attrs:
        model = llm_output.get("model_name") or llm_output.get("model")
        if isinstance(model, str) and model:
            attrs["gen_ai.response.model"] = model
    if found:
        attrs["gen_ai.usage.input_tokens"] = input_tokens
        attrs["gen_ai.usage.output_tokens"] = output_tokens
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = ",".join(reasons)
    return attrs


def _messages(messages: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Chat messages as ``{role, content}`` (for the opt-in ``gen_ai.input.messages``)."""
    out: list[dict[str, Any]] = []
    for batch in messages:
        for m in batch:
            item: dict[str, Any] = {"role": getattr(m, "type", "unknown"), "content": getattr(m, "content", m)}
            calls = getattr(m, "tool_calls", None)
            if calls:
                item["tool_calls"] = [{"id": c.get("id"), "name": c.get("name"), "args": c.get("args")}
                                      for c in calls]
            out.append(item)
    return out


def _outputs(generations: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    return _messages([[getattr(g, "message", None) or getattr(g, "text", "") for g in gens]
                      for gens in generations])


def _handler_base() -> type:
    from langchain_core.callbacks import BaseCallbackHandler

    return BaseCallbackHandler


class _Handler:
    """The callback methods; combined with ``BaseCallbackHandler`` by :func:`make_handler`."""

    #: Called on the run's own thread, in order (never through an executor).
    run_inline: ClassVar[bool] = True
    raise_error: ClassVar[bool] = False

    def __init__(self) -> None:
        self.enabled = True
        self.recorder = genai.GenAIRecorder(COMPONENT)

    # ------------------------------------------------------------------ chains

    def on_chain_start(self, serialized: Mapping[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            name = kwargs.get("name") or _serialized_name(serialized) or "chain"
            metadata = metadata or {}
            recorder = self.recorder
            if parent_run_id is None or not recorder.known(parent_run_id):
                attrs: dict[str, Any] = {}
                for key in _CONVERSATION_KEYS:
                    value = metadata.get(key)
                    if value is not None:
                        attrs["gen_ai.conversation.id"] = str(value)
                        break
                if genai.capture_content():
                    attrs["gen_ai.input.messages"] = genai.content(inputs)
                recorder.start(run_id, None, genai.AGENT, str(name), attrs)
            elif metadata.get("langgraph_node") == name:
                attrs = {"langgraph.node": str(name)}
                step = metadata.get("langgraph_step")
                if isinstance(step, int):
                    attrs["langgraph.step"] = step
                recorder.start(run_id, parent_run_id, genai.STEP, str(name), attrs)
            else:
                recorder.skip(run_id, parent_run_id)
        except Exception as exc:
            count_error("langchain.chain_start", exc)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if not self.recorder.is_open(run_id):
            self.recorder.end(run_id)  # forgets a skipped run
            return
        attrs = {"gen_ai.output.messages": genai.content(outputs)} if genai.capture_content() else None
        self.recorder.end(run_id, attrs, result=outputs)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.end(run_id, error=error)

    # ------------------------------------------------------------------ models

    def _model_start(self, kind: str, serialized: Mapping[str, Any] | None, run_id: UUID,
                     parent_run_id: UUID | None, metadata: Mapping[str, Any] | None,
                     kwargs: Mapping[str, Any], content: Any) -> None:
        metadata = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = (metadata.get("ls_model_name") or params.get("model") or params.get("model_name")
                 or params.get("model_id") or "")
        attrs: dict[str, Any] = {}
        provider = provider_name(metadata.get("ls_provider"))
        if provider is not None:
            attrs["gen_ai.provider.name"] = provider
        for source, target in (("ls_temperature", "gen_ai.request.temperature"),
                               ("ls_max_tokens", "gen_ai.request.max_tokens")):
            value = metadata.get(source)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[target] = value
        if genai.capture_content():
            attrs["gen_ai.input.messages"] = genai.content(content)
        self.recorder.start(run_id, parent_run_id, kind, str(model), attrs)

    def on_chat_model_start(self, serialized: Mapping[str, Any] | None, messages: Sequence[Sequence[Any]], *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            self._model_start(genai.CHAT, serialized, run_id, parent_run_id, metadata, kwargs,
                              _messages(messages) if genai.capture_content() else None)
        except Exception as exc:
            count_error("langchain.chat_start", exc)

    def on_llm_start(self, serialized: Mapping[str, Any] | None, prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, metadata: Mapping[str, Any] | None = None,
                     **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            self._model_start(genai.TEXT_COMPLETION, serialized, run_id, parent_run_id, metadata, kwargs,
                              prompts if genai.capture_content() else None)
        except Exception as exc:
            count_error("langchain.llm_start", exc)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        try:
            generations = getattr(response, "generations", None) or []
            attrs = _usage(generations, getattr(response, "llm_output", None))
            if genai.capture_content():
                attrs["gen_ai.output.messages"] = genai.content(_outputs(generations))
        except Exception as exc:
            count_error("langchain.llm_end", exc)
            attrs = {}
        self.recorder.end(run_id, attrs)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.end(run_id, error=error)

    # ------------------------------------------------------------------ tools

    def on_tool_start(self, serialized: Mapping[str, Any] | None, input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, metadata: Mapping[str, Any] | None = None,
                      inputs: Any = None, **kwargs: Any) -> None:
        if not self.enabled:
            return
        try:
            name = kwargs.get("name") or _serialized_name(serialized) or "tool"
            attrs: dict[str, Any] = {}
            call_id = kwargs.get("tool_call_id")
            if isinstance(call_id, str) and call_id:
                attrs["gen_ai.tool.call.id"] = call_id
            description = (serialized or {}).get("description")
            if isinstance(description, str) and description:
                attrs["gen_ai.tool.description"] = description[:1024]
            if genai.capture_content():
                attrs["gen_ai.tool.call.arguments"] = genai.content(inputs if inputs is not None else input_str)
            self.recorder.start(run_id, parent_run_id, genai.TOOL, str(name), attrs)
        except Exception as exc:
            count_error("langchain.tool_start", exc)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        attrs: dict[str, Any] = {}
        try:
            call_id = getattr(output, "tool_call_id", None)
            if isinstance(call_id, str) and call_id:
                attrs["gen_ai.tool.call.id"] = call_id
            result = getattr(output, "content", output)
            if genai.capture_content():
                attrs["gen_ai.tool.call.result"] = genai.content(result)
        except Exception as exc:
            count_error("langchain.tool_end", exc)
            result = None
        error = "tool_error" if getattr(output, "status", None) == "error" else None
        self.recorder.end(run_id, attrs, result=result, error=error)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.end(run_id, error=error)


def _serialized_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    name = serialized.get("name")
    if isinstance(name, str) and name:
        return name
    ids = serialized.get("id")
    if isinstance(ids, list) and ids and isinstance(ids[-1], str):
        return ids[-1]
    return None


_HANDLER_CLASS: type | None = None


def handler_class() -> type:
    """``ATSCallbackHandler``: :class:`_Handler` on top of LangChain's ``BaseCallbackHandler``
    (built on first use: importing the plugin must not import LangChain)."""
    global _HANDLER_CLASS
    if _HANDLER_CLASS is None:
        _HANDLER_CLASS = type("ATSCallbackHandler", (_Handler, _handler_base()), {"__module__": __name__})
    return _HANDLER_CLASS


def __getattr__(name: str) -> Any:
    if name == "ATSCallbackHandler":
        return handler_class()
    raise AttributeError(name)


class LangChainInstrumentor(Instrumentor):
    """Registers the configure hook that gives every LangChain run the ATS handler."""

    name = "langchain"
    target_modules = ("langchain_core.callbacks.manager",)
    supported_versions = ">=0.3"
    distribution = "langchain-core"

    def __init__(self) -> None:
        super().__init__()
        self.handler: Any = None
        self._hook: tuple[Any, ...] | None = None

    def _patch(self, module: ModuleType) -> None:
        from langchain_core.tracers import context

        handler = handler_class()()
        var: contextvars.ContextVar[Any] = contextvars.ContextVar("ats_langchain_handler", default=handler)
        before = list(context._configure_hooks)
        context.register_configure_hook(var, True)
        added = [h for h in context._configure_hooks if h not in before]
        self._hook = added[0] if added else None
        self.handler = handler

    def _unpatch(self, module: ModuleType) -> None:
        from langchain_core.tracers import context

        if self.handler is not None:
            self.handler.enabled = False
        if self._hook is not None:
            try:
                context._configure_hooks.remove(self._hook)
            except ValueError as exc:
                count_error("langchain.uninstrument", exc)
        self._hook = None
        self.handler = None


#: The plugin's single instrumentor (instrument() is idempotent).
instrumentor: Final = LangChainInstrumentor()


@hookimpl
def ats_instrumentors() -> list[Instrumentor]:
    """Provide the LangChain instrumentor to the ATS plugin host."""
    return [instrumentor]
