"""ATS: instrumentation for Python programs that use databases, MCP tools and AI agents."""

from __future__ import annotations

from ats._native import __version__

__all__ = ["__version__"]
