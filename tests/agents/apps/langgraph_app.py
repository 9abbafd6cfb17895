"""An unchanged LangGraph program (nothing about ATS): run by tests/agents/test_ats_run_agents.py
under ``ats-run``. LangChain's own fake chat model, no network."""

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def lookup(code: str) -> str:
    """Looks a code up."""
    return f"value of {code}: RESULT-lapis-5521"


model = GenericFakeChatModel(messages=iter([
    AIMessage(content="", tool_calls=[{"name": "lookup", "args": {"code": "ARG-onyx-3310"}, "id": "call_r1"}]),
    AIMessage(content="COMPLETION-jade-8812"),
]))


def agent(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("agent", agent)
builder.add_node("tools", ToolNode([lookup]))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", tools_condition)
builder.add_edge("tools", "agent")
graph = builder.compile(name="lookup_agent")
out = graph.invoke({"messages": [HumanMessage("PROMPT-opal-1207: look it up")]})
print("answer", out["messages"][-1].content)
