"""ATS: instrumentation for Python programs that use databases, MCP tools and AI agents.

Importing ``ats`` starts no thread and opens no file or socket.
"""

from __future__ import annotations

from ats import privacy, sql
from ats._native import __version__
from ats.plugins import hookimpl

__all__ = ["__version__", "hookimpl", "privacy", "sql"]
