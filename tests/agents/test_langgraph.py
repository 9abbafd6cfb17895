"""ats-langchain end to end: a LangGraph graph with LangChain's own fake chat model and a ToolNode.

No network: ``GenericFakeChatModel`` replays scripted ``AIMessage``s (a tool call, then an
answer) with token usage; the tool node runs a real ``@tool``. The plugin is loaded by ATS
through its entry point; the graph code contains nothing about ATS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import ats
import ats_langchain
from ats.genai import TASK_EXECUTION_BUCKETS_MS
from ats.registry import default_registry, validate_file


class ChatFake(GenericFakeChatModel):
    """LangChain's fake chat model with a model name (LangChain reports ``ls_provider`` "fake")."""

    model_name: str = "fake-gpt"


@tool
def get_weather(city: str) -> str:
    """The weather of a city."""
    if city == "Atlantis":
        raise ValueError(f"no weather for {city}; ask {EMAIL}")
    return f"{TOOL_RESULT_SECRET}: sunny in {city}"


def build_graph(city: str) -> Any:
    model = ChatFake(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": "call_w1"}],
                  usage_metadata={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
                  response_metadata={"model_name": "fake-gpt-0125", "finish_reason": "tool_calls"}),
        AIMessage(content=f"{COMPLETION_SECRET}: it is sunny",
                  usage_metadata={"input_tokens": 30, "output_tokens": 4, "total_tokens": 34},
                  response_metadata={"model_name": "fake-gpt-0125", "finish_reason": "stop"}),
    ]))

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([get_weather], handle_tool_errors=False))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(name="weather_agent")


def run(city: str = TOOL_ARG_SECRET) -> Any:
    graph = build_graph(city)
    return graph.invoke({"messages": [HumanMessage(f"{PROMPT_SECRET} weather in {city}? {EMAIL}")]},
                        config={"configurable": {"thread_id": "thread-42"}})


def test_plugin_is_loaded_through_its_entry_point(store: Store) -> None:
    assert ats_langchain.instrumentor.is_instrumented
    assert ats_langchain.instrumentor.handler is not None


TOKENS = ("gen_ai.client.token.usage", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "fake",
                                        "gen_ai.request.model": "fake-gpt", "gen_ai.response.model": "fake-gpt-0125",
                                        "gen_ai.token.type": "input"})


def test_graph_spans_names_parents_and_gen_ai_attributes(store: Store) -> None:
    calls_before = count(*TOKENS)
    sum_before = sum(p["sum"] for p in ats.metrics.snapshot() if p["name"] == TOKENS[0] and p["labels"] == TOKENS[1])
    out = run()
    assert out["messages"][-1].content.startswith(COMPLETION_SECRET)
    spans = store.spans()
    assert [(s["name"], s["status"]) for s in spans] == [
        ("invoke_agent weather_agent", "ok"),
        ("step agent", "ok"),
        ("chat fake-gpt", "ok"),
        ("step tools", "ok"),
        ("execute_tool get_weather", "ok"),
        ("step agent", "ok"),
        ("chat fake-gpt", "ok"),
    ]
    root, step1, chat1, tools, tool_span, step3, chat2 = spans
    assert {s["trace_id"] for s in spans} == {root["trace_id"]}
    assert root["parent_id"] is None
    assert [s["parent_id"] for s in spans[1:]] == [
        root["span_id"], step1["span_id"], root["span_id"], tools["span_id"], root["span_id"], step3["span_id"]]
    assert {s["component"] for s in spans} == {"ats-langchain"}
    assert root["attributes"] == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather_agent",
        "gen_ai.agent.id": root["span_id"], "gen_ai.conversation.id": "thread-42",
    }
    assert step1["attributes"] == {"langgraph.node": "agent", "langgraph.step": 1}
    assert tools["attributes"] == {"langgraph.node": "tools", "langgraph.step": 2}
    assert chat1["attributes"] == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "fake", "gen_ai.request.model": "fake-gpt",
        "gen_ai.response.model": "fake-gpt-0125", "gen_ai.response.id": chat1["attributes"]["gen_ai.response.id"],
        "gen_ai.response.finish_reasons": "tool_calls",
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
    }
    assert chat2["attributes"]["gen_ai.usage.input_tokens"] == 30
    assert chat2["attributes"]["gen_ai.usage.output_tokens"] == 4
    assert chat2["attributes"]["gen_ai.response.finish_reasons"] == "stop"
    labels = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "fake", "gen_ai.request.model": "fake-gpt",
              "gen_ai.response.model": "fake-gpt-0125"}
    tokens = metric("gen_ai.client.token.usage", {**labels, "gen_ai.token.type": "input"})
    assert tokens["unit"] == "{token}" and tokens["bounds"][:3] == [1, 4, 16]
    assert metric("gen_ai.client.operation.duration", labels)["unit"] == "s"
    assert count(*TOKENS) - calls_before == 2
    assert tokens["sum"] - sum_before == 12 + 30
    assert tool_span["attributes"] == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": "call_w1", "gen_ai.tool.description": "The weather of a city.",
    }


ASSIGNED_AGENT = ("task.assigned.total", {"agent_type": "weather_agent", "task_type": "agent"})
COMPLETED_TOOL = ("task.completed.total",
                  {"agent_type": "weather_agent", "task_type": "execute_tool", "success": "true"})
TOOL_TIME = ("task.execution_time_ms", {"task_type": "execute_tool"})
FAILED_TOOL = ("task.failed.total", {"agent_type": "weather_agent", "error_type": "ValueError"})


def test_seed_003_agent_and_task_records(store: Store) -> None:
    before = [count(*m) for m in (ASSIGNED_AGENT, COMPLETED_TOOL, TOOL_TIME)]
    run()
    spans = {(s["name"], s["span_id"]): s for s in store.spans()}
    root_id = next(sid for (name, sid) in spans if name == "invoke_agent weather_agent")
    logs = store.logs()
    assert [(r["event"], r["component"]) for r in logs] == [
        ("agent.lifecycle", "agent"),
        ("task.assigned", "scheduler"), ("task.completed", "scheduler"), ("task.execution", "task_scheduler"),
        ("task.assigned", "scheduler"),
        ("task.assigned", "scheduler"), ("task.completed", "scheduler"), ("task.execution", "task_scheduler"),
        ("task.completed", "scheduler"), ("task.execution", "task_scheduler"),
        ("task.assigned", "scheduler"), ("task.completed", "scheduler"), ("task.execution", "task_scheduler"),
        ("agent.lifecycle", "agent"),
    ]
    start, end = logs[0]["attributes"], logs[-1]["attributes"]
    for record, (state_from, state_to, reason) in ((start, ("idle", "running", "invoked")),
                                                   (end, ("running", "idle", "completed"))):
        assert set(record) == {"agent_id", "agent_type", "state_from", "state_to", "transition_reason",
                               "resource_usage.cpu_percent", "resource_usage.memory_mb",
                               "resource_usage.network_bytes"}
        assert (record["agent_id"], record["agent_type"]) == (root_id, "weather_agent")
        assert (record["state_from"], record["state_to"], record["transition_reason"]) == (state_from, state_to, reason)
        assert record["resource_usage.memory_mb"] > 1
        assert record["resource_usage.cpu_percent"] >= 0
        assert record["resource_usage.network_bytes"] >= 0
    assert logs[0]["span_id"] == root_id
    tool_id = next(sid for (name, sid) in spans if name == "execute_tool get_weather")
    assigned = [r["attributes"] for r in logs if r["event"] == "task.assigned"]
    assert [(a["task_type"], a["agent_id"]) for a in assigned] == [
        ("agent", root_id), ("tools", root_id), ("execute_tool", root_id), ("agent", root_id)]
    assert all(set(a) == {"task_id", "agent_id", "task_type"} for a in assigned)
    completed = [r for r in logs if r["event"] == "task.completed"]
    tool_done = next(r["attributes"] for r in completed if r["span_id"] == tool_id)
    assert set(tool_done) == {"task_id", "agent_id", "duration_ms", "result_size_bytes", "success"}
    assert tool_done["task_id"] == tool_id and tool_done["success"] is True
    assert tool_done["result_size_bytes"] == len(f"{TOOL_RESULT_SECRET}: sunny in {TOOL_ARG_SECRET}")
    execution = next(r["attributes"] for r in logs if r["event"] == "task.execution" and r["span_id"] == tool_id)
    assert set(execution) == {"task_id", "agent_id", "task_type", "duration_ms", "success",
                              "resource_usage.cpu_percent", "resource_usage.memory_mb", "resource_usage.network_bytes"}
    assert execution["duration_ms"] == tool_done["duration_ms"] > 0

    assert metric("agent.active")["value"] == 0.0
    after = [count(*m) for m in (ASSIGNED_AGENT, COMPLETED_TOOL, TOOL_TIME)]
    assert [a - b for a, b in zip(after, before)] == [2.0, 1.0, 1.0]
    hist = metric(*TOOL_TIME)
    assert hist["kind"] == "histogram"
    assert hist["bounds"] == TASK_EXECUTION_BUCKETS_MS == [100, 500, 1000, 5000, 10000, 30000, 60000]


def test_failing_tool_is_an_error_span_and_a_failed_task(store: Store) -> None:
    failed_before = count(*FAILED_TOOL)
    with pytest.raises(ValueError):
        run("Atlantis")
    spans = store.spans()
    assert [(s["name"], s["status"]) for s in spans] == [
        ("invoke_agent weather_agent", "error"), ("step agent", "ok"), ("chat fake-gpt", "ok"),
        ("step tools", "error"), ("execute_tool get_weather", "error"),
    ]
    assert spans[4]["attributes"]["error.type"] == "ValueError"
    tool_id = spans[4]["span_id"]
    done = next(r for r in store.logs("task.completed") if r["span_id"] == tool_id)
    assert done["severity"] == 17
    assert done["attributes"]["success"] is False
    assert done["attributes"]["error_message"] == "no weather for Atlantis; ask [EMAIL]"
    execution = next(r for r in store.logs("task.execution") if r["span_id"] == tool_id)["attributes"]
    assert (execution["success"], execution["error_type"]) == (False, "ValueError")
    last = store.logs("agent.lifecycle")[-1]["attributes"]
    assert (last["state_from"], last["state_to"], last["transition_reason"]) == ("running", "error", "ValueError")
    # Two failed tasks: the tool, and the "tools" step it failed (the seed's labels carry no task type).
    assert count(*FAILED_TOOL) - failed_before == 2.0
    assert metric("agent.active")["value"] == 0.0


def test_no_prompt_completion_or_tool_text_is_stored_by_default(store: Store) -> None:
    run()
    data = store.stored_bytes()
    assert b"ats-langchain" in data and b"execute_tool get_weather" in data
    for text in (PROMPT_SECRET, COMPLETION_SECRET, TOOL_ARG_SECRET, TOOL_RESULT_SECRET, EMAIL):
        assert text.encode() not in data, text


def test_opt_in_content_is_stored_scrubbed(capturing_store: Store) -> None:
    run()
    spans = {s["name"]: s["attributes"] for s in capturing_store.spans()}
    chat = spans["chat fake-gpt"]
    assert PROMPT_SECRET in chat["gen_ai.input.messages"]
    assert COMPLETION_SECRET in chat["gen_ai.output.messages"]
    tool_attrs = spans["execute_tool get_weather"]
    assert TOOL_ARG_SECRET in tool_attrs["gen_ai.tool.call.arguments"]
    assert tool_attrs["gen_ai.tool.call.result"] == f"{TOOL_RESULT_SECRET}: sunny in {TOOL_ARG_SECRET}"
    assert "[EMAIL]" in chat["gen_ai.input.messages"]
    data = capturing_store.stored_bytes()
    assert PROMPT_SECRET.encode() in data and EMAIL.encode() not in data


def test_uninstrument_stops_tracing(store: Store) -> None:
    assert ats_langchain.instrumentor.uninstrument()
    try:
        run()
        assert store.spans() == [] and store.logs() == []
    finally:
        assert ats_langchain.instrumentor.instrument()


def test_provider_names_follow_the_gen_ai_conventions() -> None:
    assert [ats_langchain.provider_name(p) for p in ("openai", "azure", "anthropic", "google_vertexai",
                                                     "bedrock", "mistralai", "xai", "Ollama", "", None)] == [
        "openai", "azure.ai.openai", "anthropic", "gcp.vertex_ai", "aws.bedrock", "mistral_ai", "x_ai",
        "ollama", None, None]


def test_nothing_is_recorded_without_ats() -> None:
    assert ats._runtime.current() is None
    out = run()
    assert out["messages"][-1].content.startswith(COMPLETION_SECRET)


def test_jsonl_output_validates_against_the_registry(tmp_path: Path) -> None:
    home = tmp_path / ".ats"
    assert ats.init(**{"home": str(home), "jsonl.enabled": True, "metrics.interval_ms": 3_600_000}) is not None
    try:
        run()
        assert ats.flush(5.0)
    finally:
        ats.shutdown(5.0)
    files = sorted((home / "jsonl").glob("*.jsonl"))
    assert files
    registry = default_registry()
    assert [registry.lookup(n).family for n in ("invoke_agent weather_agent", "execute_tool get_weather",
                                                  "chat fake-gpt", "step tools")] == ["gen_ai"] * 4
    assert registry.lookup("nonsense thing") is None
    kinds: dict[str, int] = {}
    for path in files:
        report = validate_file(path, registry)
        assert report.ok, report.format_errors()
        assert report.unregistered == {}
        for kind, n in report.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + n
    assert kinds["span"] == 7 and kinds["log"] == 14


def test_async_graph_is_traced_the_same(store: Store) -> None:
    import asyncio

    graph = build_graph(TOOL_ARG_SECRET)
    out = asyncio.run(graph.ainvoke({"messages": [HumanMessage("weather?")]},
                                    config={"configurable": {"thread_id": "thread-43"}}))
    assert out["messages"][-1].content.startswith(COMPLETION_SECRET)
    spans = store.spans()
    assert [s["name"] for s in spans] == [
        "invoke_agent weather_agent", "step agent", "chat fake-gpt", "step tools", "execute_tool get_weather",
        "step agent", "chat fake-gpt"]
    by_id = {s["span_id"]: s["name"] for s in spans}
    assert [by_id.get(s["parent_id"]) for s in spans] == [
        None, "invoke_agent weather_agent", "step agent", "invoke_agent weather_agent", "step tools",
        "invoke_agent weather_agent", "step agent"]
    assert spans[0]["attributes"]["gen_ai.conversation.id"] == "thread-43"
    assert len(store.logs("agent.lifecycle")) == 2 and len(store.logs("task.execution")) == 4


def test_a_tools_database_calls_are_children_of_its_span(store: Store) -> None:
    import sqlite3

    from langchain_core.runnables import RunnableLambda

    @tool
    def count_rows(table: str) -> int:
        """Counts the rows of a table."""
        db = sqlite3.connect(":memory:")
        try:
            return int(db.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0])
        finally:
            db.close()

    chain = RunnableLambda(lambda q: count_rows.invoke({"name": "count_rows", "args": {"table": q},
                                                        "id": "call_db", "type": "tool_call"}).content,
                           name="db_agent")
    assert chain.invoke("users") == "0"
    spans = store.spans()
    assert [s["name"] for s in spans] == [
        "invoke_agent db_agent", "execute_tool count_rows", "driver.handshake", "driver.query", "driver.close"]
    root, tool_span, *driver = spans
    assert tool_span["parent_id"] == root["span_id"]
    assert [d["parent_id"] for d in driver] == [tool_span["span_id"]] * 3
    assert {d["trace_id"] for d in driver} == {root["trace_id"]}
    assert ats.current_span() is None  # the runs' context was restored


def test_a_completion_model_is_a_text_completion_span(store: Store) -> None:
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.runnables import RunnableLambda

    llm = FakeListLLM(responses=[f"{COMPLETION_SECRET} done"])
    chain = RunnableLambda(lambda q: llm.invoke(q), name="writer")
    assert chain.invoke(f"{PROMPT_SECRET} write") == f"{COMPLETION_SECRET} done"
    spans = store.spans()
    assert [(s["name"], s["status"]) for s in spans] == [("invoke_agent writer", "ok"), ("text_completion", "ok")]
    assert spans[1]["parent_id"] == spans[0]["span_id"]
    # FakeListLLM names no model and reports no usage: no model attributes, no token counts.
    assert spans[1]["attributes"] == {"gen_ai.operation.name": "text_completion", "gen_ai.provider.name": "fakelist"}
