"""Agent sessions and tool calls (seed 004 §2.3, §3.1).

``with ats.session("fix-issue-42", ticket="42") as s:`` (or ``async with``) records:

- ``session.start``: the session's root span, open for the whole session. Attributes
  ``session.id``, ``session.name``, ``session.<key>`` for each metadata keyword and the workspace
  context ``workspace.path`` (the working directory); at the end also ``session.outcome``.
- inside it, ``decision`` spans (:meth:`Session.decision`), ``error`` spans (:meth:`Session.error`,
  and one for an exception that leaves the ``with`` block) and ``tool.execute`` spans
  (:meth:`Session.tool` / :func:`tool_call`);
- ``session.end``: a child of ``session.start`` at the end with the summary: ``session.outcome``
  (``ok``, ``error`` or ``cancelled``), ``session.summary`` when set, ``session.duration_ms``,
  ``session.tool_calls``, ``session.tool_errors``, ``session.decisions``, ``session.errors``.

The seed 004 hook points call the plugins' hooks through :class:`ats.plugins.PluginHost`:
``ats_session_start`` inside ``session.start``, ``ats_session_end`` inside ``session.end``,
``ats_tool_execute_before`` / ``ats_tool_execute_after`` inside ``tool.execute``.

Like the rest of the manual API, nothing here raises because of telemetry: before ``ats.init()``
no span is recorded and no hook is called, and the user's exceptions pass through unchanged.
"""

from __future__ import annotations

import contextvars
import time

from ats import _runtime
from ats.api import Span

# Not `typing.TYPE_CHECKING`: importing typing is a measurable part of `import ats`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import Mapping
    from types import TracebackType
    from typing import Any

    from ats.api import AttributeValue
    from ats.attribution import Tracker

__all__ = ["OUTCOMES", "Session", "ToolCall", "current_session", "session", "tool_call"]

#: What ``session.outcome`` may be (the ``ats_session_end`` hook's ``outcome``).
OUTCOMES = ("ok", "error", "cancelled")

_CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar("ats_current_session", default=None)
# Exceptions that end a session as cancelled rather than failed.
_CANCEL_NAMES = frozenset({"CancelledError", "KeyboardInterrupt", "GeneratorExit"})


def current_session() -> Session | None:
    """The innermost session entered in this context (thread, task), or ``None``."""
    return _CURRENT.get()


def _span(name: str, attributes: dict[str, AttributeValue]) -> Span:
    s = Span(name, attributes, component="session")
    # Span() strips a status-like suffix (``.start``); seed 004 names the span ``session.start``.
    s.name = name
    return s


def _scalar(value: object) -> AttributeValue:
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _scrubbed(value: object) -> object:
    if isinstance(value, str):
        from ats.privacy import scrub

        return scrub(value)
    return value


def _instant(name: str, attributes: dict[str, AttributeValue], ok: bool) -> None:
    """A zero-length span at this moment, child of the current span."""
    sp = _span(name, attributes)
    sp.__enter__()
    sp.set_status(ok)
    sp.__exit__(None, None, None)


def _plugins() -> Any:
    rt = _runtime.current()
    return rt.plugins if rt is not None else None


class Session:
    """A running agent session; satisfies :class:`ats.hookspecs.Session`.  Create it with
    :func:`session`."""

    __slots__ = ("name", "_id", "_attributes", "_root", "_token", "_start_ns", "outcome", "summary",
                 "tool_calls", "tool_errors", "decisions", "errors")

    def __init__(self, name: str, metadata: Mapping[str, object]) -> None:
        import os
        import uuid

        self.name = name
        self._id = str(uuid.uuid4())
        attributes: dict[str, AttributeValue] = {"session.id": self._id, "session.name": name}
        for key, value in metadata.items():
            attributes[f"session.{key}"] = _scalar(value)
        try:
            attributes["workspace.path"] = os.getcwd()
        except OSError:  # the working directory was removed
            pass
        self._attributes = attributes
        self._root: Span | None = None
        self._token: contextvars.Token[Session | None] | None = None
        self._start_ns = 0
        #: ``None`` until set by :meth:`set_outcome` or decided at the end (``ok`` / ``error`` / ``cancelled``).
        self.outcome: str | None = None
        #: Free text for ``session.end`` (scrubbed before it is stored).
        self.summary: str | None = None
        self.tool_calls = 0
        self.tool_errors = 0
        self.decisions = 0
        self.errors = 0

    # -- hookspecs.Session ---------------------------------------------------------------------
    @property
    def session_id(self) -> str:
        """A UUID (version 4) string."""
        return self._id

    @property
    def attributes(self) -> Mapping[str, object]:
        """The ``session.start`` attributes: id, name, metadata, workspace context."""
        return self._attributes

    # -- inside the session --------------------------------------------------------------------
    def set_outcome(self, outcome: str) -> None:
        """Override the outcome decided at the end (``ok`` unless an exception left the block)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"session outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
        self.outcome = outcome

    def set_summary(self, summary: str) -> None:
        """The ``session.summary`` of ``session.end``."""
        self.summary = summary

    def decision(self, choice: str, /, *, reason: str | None = None,
                 options: list[str] | tuple[str, ...] | None = None, **attributes: AttributeValue) -> None:
        """Record a ``decision`` span: ``decision.choice``, ``decision.reason``, ``decision.options``
        (comma-joined) and any further attributes."""
        try:
            attrs: dict[str, AttributeValue] = {"session.id": self._id, "decision.choice": choice}
            if reason is not None:
                attrs["decision.reason"] = reason
            if options is not None:
                attrs["decision.options"] = ",".join(options)
            attrs.update(attributes)
            self.decisions += 1
            _instant("decision", attrs, ok=True)
        except Exception as exc:
            _runtime.count_error("session.decision", exc)

    def error(self, error: BaseException | str, /, *, recovered: bool = False,
              **attributes: AttributeValue) -> None:
        """Record an ``error`` span (status error): ``error.type`` (the exception's class, or
        ``"error"`` for a message), ``error.message`` (scrubbed), ``error.recovered``."""
        try:
            attrs: dict[str, AttributeValue] = {"session.id": self._id}
            if isinstance(error, BaseException):
                attrs["error.type"] = type(error).__qualname__
                attrs["error.message"] = str(error)[:4096]
            else:
                attrs["error.type"] = "error"
                attrs["error.message"] = error[:4096]
            attrs["error.recovered"] = recovered
            attrs.update(attributes)
            self.errors += 1
            _instant("error", attrs, ok=False)
        except Exception as exc:
            _runtime.count_error("session.error", exc)

    def tool(self, name: str, /, *, version: str | None = None, arguments: Mapping[str, object] | None = None,
             track: str | os.PathLike[str] | None = None, contributor: str = "ai",
             model_id: str | None = None) -> ToolCall:
        """A ``tool.execute`` span for one tool call of this session; see :func:`tool_call`."""
        return ToolCall(name, version, arguments, self, track, contributor, model_id)

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Session:
        self._start_ns = time.time_ns()
        self._token = _CURRENT.set(self)
        try:
            self._root = _span("session.start", dict(self._attributes))
            self._root.__enter__()
            host = _plugins()
            if host is not None:
                host.session_start(self)
        except Exception as exc:
            _runtime.count_error("session.start", exc)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._finish(exc)
        except Exception as e:
            _runtime.count_error("session.end", e)
        root, self._root = self._root, None
        if root is not None:
            root.__exit__(exc_type, exc, tb)
        if self._token is not None:
            try:
                _CURRENT.reset(self._token)
            except ValueError:  # left in another context than it was entered in
                _CURRENT.set(None)
            self._token = None

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _finish(self, exc: BaseException | None) -> None:
        if exc is not None:
            cancelled = type(exc).__name__ in _CANCEL_NAMES
            if not cancelled:
                self.error(exc)
            if self.outcome is None:
                self.outcome = "cancelled" if cancelled else "error"
        outcome = self.outcome or "ok"
        self.outcome = outcome
        root = self._root
        if root is not None:
            root.set_attribute("session.outcome", outcome)
            if outcome == "error":
                root.set_status(False)
        end: dict[str, AttributeValue] = {
            "session.id": self._id,
            "session.outcome": outcome,
            "session.duration_ms": (time.time_ns() - self._start_ns) / 1e6,
            "session.tool_calls": self.tool_calls,
            "session.tool_errors": self.tool_errors,
            "session.decisions": self.decisions,
            "session.errors": self.errors,
        }
        if self.summary is not None:
            end["session.summary"] = self.summary
        sp = _span("session.end", end)
        with sp:
            sp.set_status(outcome != "error")
            host = _plugins()
            if host is not None:
                host.session_end(self, outcome)

    def __repr__(self) -> str:
        return f"Session(name={self.name!r}, session_id={self._id!r}, outcome={self.outcome!r})"


def session(name: str, /, **metadata: object) -> Session:
    """An agent session: ``with ats.session("fix-issue-42", agent="coder") as s:`` or ``async with``."""
    return Session(name, metadata)


class ToolCall:
    """One tool call; satisfies :class:`ats.hookspecs.ToolCall`.  Use as a context manager
    (``with``/``async with``); set :attr:`result` inside the block for ``ats_tool_execute_after``.

    When ``track`` names a directory inside a git work tree, the files the call writes there are
    attributed to ``contributor`` (Agent Trace, :func:`ats.attribution.track`); the records are
    linked to this call's ``tool.execute`` span.
    """

    __slots__ = ("name", "version", "_arguments", "_session", "_track", "_contributor", "_model_id",
                 "result", "tracker", "_span", "_start", "_token")

    def __init__(self, name: str, version: str | None, arguments: Mapping[str, object] | None,
                 session: Session | None, track: str | os.PathLike[str] | None, contributor: str,
                 model_id: str | None) -> None:
        self.name = name
        self.version = version
        self._arguments: dict[str, object] = {k: _scrubbed(v) for k, v in (arguments or {}).items()}
        self._session = session
        self._track = track
        self._contributor = contributor
        self._model_id = model_id
        #: The tool's return value, passed to ``ats_tool_execute_after``.
        self.result: object = None
        #: The attribution tracker when ``track`` was given (its ``record`` after the call).
        self.tracker: Tracker | None = None
        self._span: Span | None = None
        self._start = 0
        self._token: contextvars.Token[Session | None] | None = None
        if track is not None:
            from ats.attribution import check_contributor

            check_contributor(contributor, model_id)

    @property
    def arguments(self) -> Mapping[str, object]:
        """The call's arguments, string values scrubbed."""
        return self._arguments

    @property
    def session_id(self) -> str | None:
        return self._session.session_id if self._session is not None else None

    def __enter__(self) -> ToolCall:
        try:
            attrs: dict[str, AttributeValue] = {"tool.name": self.name}
            if self.version is not None:
                attrs["tool.version"] = self.version
            if self._session is not None:
                attrs["session.id"] = self._session.session_id
            if self._arguments:
                attrs["tool.argument_names"] = ",".join(sorted(self._arguments))
            self._span = _span("tool.execute", attrs)
            self._span.component = "tool"
            self._span.__enter__()
            host = _plugins()
            if host is not None:
                host.tool_execute_before(self)
            if self._track is not None:
                from ats.attribution import Tracker

                self.tracker = Tracker(self._track, tool=self.name, tool_version=self.version,
                                       contributor=self._contributor, model_id=self._model_id,
                                       session_id=self.session_id)
                self.tracker.__enter__()
        except Exception as exc:
            _runtime.count_error("tool.execute.before", exc)
        self._start = time.perf_counter_ns()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration_ns = time.perf_counter_ns() - self._start
        try:
            if self.tracker is not None:
                self.tracker.__exit__(exc_type, exc, tb)
            sess = self._session
            if sess is not None:
                sess.tool_calls += 1
                if exc is not None:
                    sess.tool_errors += 1
            sp = self._span
            if sp is not None:
                sp.set_attribute("tool.success", exc is None)
                sp.set_attribute("duration_ms", duration_ns / 1e6)
            host = _plugins()
            if host is not None:
                host.tool_execute_after(self, None if exc is not None else self.result, exc, duration_ns)
        except Exception as e:
            _runtime.count_error("tool.execute.after", e)
        sp, self._span = self._span, None
        if sp is not None:
            sp.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> ToolCall:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"ToolCall(name={self.name!r}, version={self.version!r}, session_id={self.session_id!r})"


def tool_call(name: str, /, *, version: str | None = None, arguments: Mapping[str, object] | None = None,
              track: str | os.PathLike[str] | None = None, contributor: str = "ai",
              model_id: str | None = None) -> ToolCall:
    """A ``tool.execute`` span for one tool call, in the current session if any.

    MCP and agent-framework plugins wrap their tool invocations in this, so every tool call
    reaches the ``ats_tool_execute_before``/``after`` hooks the same way.

    :param name: the tool's name (``tool.name``).
    :param version: the tool's version (``tool.version``; Agent Trace ``tool.version``).
    :param arguments: the call's arguments; only their names are stored (``tool.argument_names``),
        the hooks receive them with string values scrubbed.
    :param track: a directory inside a git work tree whose changes the call makes are attributed
        to ``contributor`` (see :mod:`ats.attribution`).
    :param contributor: ``ai``, ``human``, ``mixed`` or ``unknown`` (Agent Trace contributor type).
    :param model_id: the model, ``provider/model`` (``anthropic/claude-sonnet-4-20250514``).
    :raises ValueError: with ``track``, a contributor or model id the Agent Trace schema rejects.
    """
    return ToolCall(name, version, arguments, current_session(), track, contributor, model_id)
