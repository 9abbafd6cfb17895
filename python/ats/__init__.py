"""ATS: instrumentation for Python programs that use databases, MCP tools and AI agents.

Importing ``ats`` starts no thread and opens no file or socket; ``ats.init()`` (or
``ats-run``) does.
"""

from __future__ import annotations

from ats import metrics, privacy, sql
from ats._native import __version__
from ats._runtime import flush, init, reload, shutdown
from ats.api import Span, emit, span, traced
from ats.context import SpanContext, current_span
from ats.plugins import hookimpl
from ats.sessions import Session, ToolCall, current_session, session, tool_call

__all__ = [
    "Session",
    "Span",
    "SpanContext",
    "ToolCall",
    "__version__",
    "current_session",
    "current_span",
    "emit",
    "flush",
    "hookimpl",
    "init",
    "metrics",
    "privacy",
    "reload",
    "session",
    "shutdown",
    "span",
    "sql",
    "tool_call",
    "traced",
]
