"""ats-openai-agents end to end: an OpenAI Agents SDK agent on a fake ``Model`` calling a function tool.

No network: ``FakeModel`` implements the SDK's ``Model`` interface the way the SDK's own
chat-completions model does (a ``generation_span`` with the model and token usage) and returns a
function call, then an answer. The SDK's ``Runner`` runs the real agent loop and the real tool.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import Agent, ModelResponse, Runner, Usage, function_tool, set_trace_processors
from agents.models.interface import Model
from agents.tracing import generation_span
from agent_support import (
    COMPLETION_SECRET,
    EMAIL,
    PROMPT_SECRET,
    TOOL_ARG_SECRET,
    TOOL_RESULT_SECRET,
    Store,
    count,
    metric,
)
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

import ats_openai_agents

# The SDK's default processor uploads traces to OpenAI: no network here. ATS adds its own
# processor when it starts (each test's fixture), after this.
set_trace_processors([])

MODEL = "fake-4o-mini"


@function_tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"{TOOL_RESULT_SECRET}: sunny in {city}"


class FakeModel(Model):
    """Two turns: a call of ``get_weather``, then a text answer."""

    def __init__(self, city: str) -> None:
        self.city = city
        self.turn = 0

    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
                           output_schema: Any, handoffs: Any, tracing: Any, *, previous_response_id: Any = None,
                           conversation_id: Any = None, prompt: Any = None) -> ModelResponse:
        self.turn += 1
        with generation_span(model=MODEL, disabled=tracing.is_disabled()) as span:
            if self.turn == 1:
                output: list[Any] = [ResponseFunctionToolCall(
                    id="fc_1", call_id="call_a1", name="get_weather", type="function_call", status="completed",
                    arguments=json.dumps({"city": self.city}))]
                usage = Usage(requests=1, input_tokens=21, output_tokens=7, total_tokens=28)
            else:
                output = [ResponseOutputMessage(
                    id="msg_1", role="assistant", status="completed", type="message",
                    content=[ResponseOutputText(text=f"{COMPLETION_SECRET}: sunny", type="output_text",
                                                annotations=[])])]
                usage = Usage(requests=1, input_tokens=40, output_tokens=3, total_tokens=43)
            span.span_data.usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            if tracing.include_data():
                span.span_data.input = input if isinstance(input, list) else [{"role": "user", "content": input}]
                span.span_data.output = [o.model_dump() for o in output]
            return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def run() -> Any:
    agent = Agent(name="Weather bot", instructions="Answer about the weather.", model=FakeModel(TOOL_ARG_SECRET),
                  tools=[get_weather])
    from agents import RunConfig

    return asyncio.run(Runner.run(agent, f"{PROMPT_SECRET} weather in {TOOL_ARG_SECRET}? {EMAIL}",
                                  run_config=RunConfig(group_id="conv-7")))


def test_processor_is_registered_through_the_entry_point(store: Store) -> None:
    assert ats_openai_agents.instrumentor.is_instrumented
    from agents.tracing import get_trace_provider

    processors = get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
    assert ats_openai_agents.instrumentor.processor in processors


def test_agent_spans_names_parents_and_gen_ai_attributes(store: Store) -> None:
    result = run()
    assert result.final_output == f"{COMPLETION_SECRET}: sunny"
    spans = store.spans()
    assert [(s["name"], s["status"]) for s in spans] == [
        ("invoke_agent Weather bot", "ok"),
        ("chat fake-4o-mini", "ok"),
        ("execute_tool get_weather", "ok"),
        ("chat fake-4o-mini", "ok"),
    ]
    root, chat1, tool_span, chat2 = spans
    assert {s["trace_id"] for s in spans} == {root["trace_id"]}
    assert root["parent_id"] is None
    assert [s["parent_id"] for s in spans[1:]] == [root["span_id"]] * 3
    assert {s["component"] for s in spans} == {"ats-openai-agents"}
    assert root["attributes"] == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai",
        "gen_ai.agent.name": "Weather bot", "gen_ai.agent.id": root["span_id"],
        "gen_ai.conversation.id": "conv-7",
    }
    assert chat1["attributes"] == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": MODEL,
        "gen_ai.response.model": MODEL, "gen_ai.usage.input_tokens": 21, "gen_ai.usage.output_tokens": 7,
    }
    assert (chat2["attributes"]["gen_ai.usage.input_tokens"], chat2["attributes"]["gen_ai.usage.output_tokens"]) \
        == (40, 3)
    assert tool_span["attributes"] == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "call_a1",
    }


def test_seed_003_records_and_metrics(store: Store) -> None:
    labels = {"agent_type": "Weather bot", "task_type": "execute_tool", "success": "true"}
    before = (count("task.completed.total", labels), count("task.execution_time_ms", {"task_type": "execute_tool"}),
              count("task.assigned.total", {"agent_type": "Weather bot", "task_type": "execute_tool"}))
    run()
    spans = store.spans()
    root_id, tool_id = spans[0]["span_id"], spans[2]["span_id"]
    logs = store.logs()
    assert [(r["event"], r["component"], r["span_id"]) for r in logs] == [
        ("agent.lifecycle", "agent", root_id),
        ("task.assigned", "scheduler", tool_id),
        ("task.completed", "scheduler", tool_id),
        ("task.execution", "task_scheduler", tool_id),
        ("agent.lifecycle", "agent", root_id),
    ]
    assert logs[1]["attributes"] == {"task_id": tool_id, "agent_id": root_id, "task_type": "execute_tool"}
    completed = logs[2]["attributes"]
    assert completed == {"task_id": tool_id, "agent_id": root_id, "duration_ms": completed["duration_ms"],
                         "result_size_bytes": len(f"{TOOL_RESULT_SECRET}: sunny in {TOOL_ARG_SECRET}"),
                         "success": True}
    execution = logs[3]["attributes"]
    assert {k: v for k, v in execution.items() if not k.startswith("resource_usage.")} == {
        "task_id": tool_id, "agent_id": root_id, "task_type": "execute_tool",
        "duration_ms": completed["duration_ms"], "success": True}
    assert execution["resource_usage.memory_mb"] > 1
    assert [(r["attributes"]["state_from"], r["attributes"]["state_to"], r["attributes"]["agent_type"])
            for r in (logs[0], logs[-1])] == [("idle", "running", "Weather bot"), ("running", "idle", "Weather bot")]
    after = (count("task.completed.total", labels), count("task.execution_time_ms", {"task_type": "execute_tool"}),
             count("task.assigned.total", {"agent_type": "Weather bot", "task_type": "execute_tool"}))
    assert [a - b for a, b in zip(after, before)] == [1.0, 1.0, 1.0]
    assert metric("agent.active")["value"] == 0.0


def test_no_prompt_completion_or_tool_text_is_stored_by_default(store: Store) -> None:
    run()
    data = store.stored_bytes()
    assert b"invoke_agent Weather bot" in data
    for text in (PROMPT_SECRET, COMPLETION_SECRET, TOOL_ARG_SECRET, TOOL_RESULT_SECRET, EMAIL):
        assert text.encode() not in data, text


def test_opt_in_content_is_stored_scrubbed(capturing_store: Store) -> None:
    run()
    spans = {s["name"]: s["attributes"] for s in capturing_store.spans()}
    tool_attrs = spans["execute_tool get_weather"]
    assert json.loads(tool_attrs["gen_ai.tool.call.arguments"]) == {"city": TOOL_ARG_SECRET}
    assert tool_attrs["gen_ai.tool.call.result"] == f"{TOOL_RESULT_SECRET}: sunny in {TOOL_ARG_SECRET}"
    chat = spans["chat fake-4o-mini"]
    assert PROMPT_SECRET in chat["gen_ai.input.messages"] and "[EMAIL]" in chat["gen_ai.input.messages"]
    data = capturing_store.stored_bytes()
    assert COMPLETION_SECRET.encode() in data and EMAIL.encode() not in data


def test_uninstrument_removes_the_processor(store: Store) -> None:
    from agents.tracing import get_trace_provider

    from agents.tool_context import ToolContext

    processor = ats_openai_agents.instrumentor.processor
    wrapped = ToolContext.__dict__["from_agent_context"]
    assert ats_openai_agents.instrumentor.uninstrument()
    try:
        assert processor not in get_trace_provider()._multi_processor._processors  # type: ignore[attr-defined]
        assert ToolContext.__dict__["from_agent_context"] is not wrapped
        assert ToolContext.__dict__["from_agent_context"].__func__.__module__ == "agents.tool_context"
        run()
        assert store.spans() == [] and store.logs() == []
    finally:
        assert ats_openai_agents.instrumentor.instrument()
