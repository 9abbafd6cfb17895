"""ats-pydantic-ai end to end: a Pydantic AI agent on its own offline ``FunctionModel`` calling a tool.

No network: ``FunctionModel`` is Pydantic AI's scripted model (here: a tool call, then an answer;
token usage is its own estimate). The plugin makes Pydantic AI's GenAI instrumentation report to
ATS; the agent code contains nothing about ATS or OpenTelemetry.
"""

from __future__ import annotations

from typing import Any

from agent_support import COMPLETION_SECRET, EMAIL, PROMPT_SECRET, TOOL_ARG_SECRET, TOOL_RESULT_SECRET, Store
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import ats_pydantic_ai


def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if len(messages) == 1:
        return ModelResponse(parts=[ToolCallPart("get_weather", {"city": TOOL_ARG_SECRET}, tool_call_id="call_p1")])
    return ModelResponse(parts=[TextPart(f"{COMPLETION_SECRET}: sunny")])


def run() -> Any:
    agent = Agent(FunctionModel(script, model_name="fake-fn"), name="weather_pa")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather of a city."""
        return f"{TOOL_RESULT_SECRET}: sunny in {city}"

    return agent.run_sync(f"{PROMPT_SECRET} weather in {TOOL_ARG_SECRET}? {EMAIL}")


def test_agent_spans_records_and_no_content(store: Store) -> None:
    assert ats_pydantic_ai.instrumentor.is_instrumented
    assert run().output == f"{COMPLETION_SECRET}: sunny"
    spans = store.spans()
    assert [(s["name"], s["status"]) for s in spans] == [
        ("invoke_agent weather_pa", "ok"), ("chat fake-fn", "ok"), ("execute_tool get_weather", "ok"),
        ("chat fake-fn", "ok"),
    ]
    root, chat1, tool_span, _ = spans
    assert [s["parent_id"] for s in spans] == [None, root["span_id"], root["span_id"], root["span_id"]]
    conversation = root["attributes"]["gen_ai.conversation.id"]
    assert root["attributes"] == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather_pa",
        "gen_ai.agent.id": root["span_id"], "gen_ai.conversation.id": conversation,
    }
    usage = {k: chat1["attributes"][k] for k in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")}
    assert chat1["attributes"] == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "function", "gen_ai.request.model": "fake-fn",
        "gen_ai.response.model": "fake-fn", "gen_ai.conversation.id": conversation, **usage,
    }
    assert all(isinstance(v, int) and v > 0 for v in usage.values())
    assert tool_span["attributes"] == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "call_p1", "gen_ai.conversation.id": conversation,
    }
    logs = store.logs()
    assert [(r["event"], r["span_id"]) for r in logs] == [
        ("agent.lifecycle", root["span_id"]), ("task.assigned", tool_span["span_id"]),
        ("task.completed", tool_span["span_id"]), ("task.execution", tool_span["span_id"]),
        ("agent.lifecycle", root["span_id"]),
    ]
    # Pydantic AI shows no tool result without content capture: no result_size_bytes rather than a wrong 0.
    assert set(logs[2]["attributes"]) == {"task_id", "agent_id", "duration_ms", "success"}
    data = store.stored_bytes()
    for text in (PROMPT_SECRET, COMPLETION_SECRET, TOOL_ARG_SECRET, TOOL_RESULT_SECRET, EMAIL):
        assert text.encode() not in data, text


def test_opt_in_content_is_stored_scrubbed(capturing_store: Store) -> None:
    run()
    spans = {s["name"]: s for s in capturing_store.spans()}
    tool_span = spans["execute_tool get_weather"]
    assert TOOL_ARG_SECRET in tool_span["attributes"]["gen_ai.tool.call.arguments"]
    assert TOOL_RESULT_SECRET in tool_span["attributes"]["gen_ai.tool.call.result"]
    done = next(r for r in capturing_store.logs("task.completed") if r["span_id"] == tool_span["span_id"])
    assert done["attributes"]["result_size_bytes"] == len(tool_span["attributes"]["gen_ai.tool.call.result"])
    data = capturing_store.stored_bytes()
    assert PROMPT_SECRET.encode() in data and EMAIL.encode() not in data


def test_uninstrument_restores_the_default(store: Store) -> None:
    assert Agent._instrument_default is not False
    assert ats_pydantic_ai.instrumentor.uninstrument()
    try:
        assert Agent._instrument_default is False
        run()
        assert store.spans() == [] and store.logs() == []
    finally:
        assert ats_pydantic_ai.instrumentor.instrument()
