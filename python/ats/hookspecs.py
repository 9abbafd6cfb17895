"""Hook specifications of the ATS plugin host (pluggy project ``"ats"``).

A plugin is any module or object with functions named after these hooks and marked with
``@ats.hookimpl``; it is found through the entry-point group ``ats``.  Every hook is prefixed
``ats_``; a plugin function may accept any subset of a hook's parameters.  Hooks are called
through :class:`ats.plugins.PluginHost`, whose methods are the typed entry points.

Hook implementations run inside the host's error guard: an exception is counted
(``ats trace stats``, ``ats doctor``) and never reaches the instrumented program, but it
stops the remaining implementations of that one call, so do not raise on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from ats.config import Config
    from ats.instrumentation import Instrumentor

__all__ = [
    "EventFamilyRegistry",
    "Session",
    "ToolCall",
    "hookspec",
]

#: Marks the hook specifications below; plugins use ``ats.hookimpl``.
hookspec = pluggy.HookspecMarker("ats")


class EventFamilyRegistry(Protocol):
    """What ``ats_register_event_families`` receives: the event-family registry (seed 002)."""

    def register(self, family: Any) -> None:
        """Add an event family (its names, JSON Schema, sensitivity and transmission classes,
        retention class and owner).  Raises ``ValueError`` for a family name already taken."""


class Session(Protocol):
    """An agent session (seed 004 ``session.start`` / ``session.end``)."""

    @property
    def session_id(self) -> str:
        """Stable identifier of the session."""

    @property
    def attributes(self) -> Mapping[str, object]:
        """Session metadata and workspace context (already redacted)."""


class ToolCall(Protocol):
    """One tool invocation (seed 004 ``tool.execute.before`` / ``tool.execute.after``)."""

    @property
    def name(self) -> str:
        """The tool's name, e.g. ``"read_file"``."""

    @property
    def arguments(self) -> Mapping[str, object]:
        """The call's arguments (already redacted)."""

    @property
    def session_id(self) -> str | None:
        """The session the call belongs to, if any."""


@hookspec(historic=True)
def ats_configure(config: Config) -> None:
    """Receive the validated configuration once ATS has started.

    Historic: a plugin registered later is called on registration with the same
    configuration.  Also called again after ``ats.reload()`` with the new configuration.

    :param config: the effective :class:`ats.config.Config` (frozen).
    """


@hookspec(historic=True)
def ats_register_event_families(registry: EventFamilyRegistry) -> None:
    """Add event families (seed 002) so the events a plugin emits are accepted.

    Historic: a plugin registered after start-up still gets to register its families.
    An event whose family is not registered is rejected and counted.

    :param registry: the event-family registry; call ``registry.register(family)``.
    """


@hookspec
def ats_instrumentors() -> list[Instrumentor]:
    """Return the instrumentors this plugin provides (may be empty).

    The host instruments each one unless the plugin is disabled; an instrumentor patches its
    target modules lazily, when they are first imported.  Called once at start-up.

    :return: a list of :class:`ats.instrumentation.Instrumentor` instances.
    """
    raise NotImplementedError  # pragma: no cover - specification only


@hookspec
def ats_session_start(session: Session) -> None:
    """An agent session started (seed 004 hook point ``session.start``).

    :param session: the session, with its metadata and workspace context.
    """


@hookspec
def ats_session_end(session: Session, outcome: str) -> None:
    """An agent session ended (seed 004 hook point ``session.end``).

    :param session: the session that ended.
    :param outcome: ``"ok"``, ``"error"`` or ``"cancelled"``.
    """


@hookspec
def ats_tool_execute_before(call: ToolCall) -> None:
    """A tool is about to run (seed 004 hook point ``tool.execute.before``).

    Runs on the caller's thread, before the tool: keep it short.

    :param call: the tool name, its arguments and the session.
    """


@hookspec
def ats_tool_execute_after(
    call: ToolCall, result: object, error: BaseException | None, duration_ns: int
) -> None:
    """A tool finished (seed 004 hook point ``tool.execute.after``).

    Runs on the caller's thread, after the tool: keep it short.  The tool's own result or
    exception is passed on to the caller whatever the plugin does.

    :param call: the same call object as in ``ats_tool_execute_before``.
    :param result: the tool's return value (``None`` when it raised).
    :param error: the exception the tool raised, or ``None`` on success.
    :param duration_ns: wall time of the tool call in nanoseconds.
    """


@hookspec
def ats_process_batch(records: Sequence[Mapping[str, object]]) -> None:
    """A batch of records was drained from the ring buffer on the flush path.

    Called once per batch (never per event) on ATS's own drain thread, off the program's
    hot path, after redaction and sampling, in the order the records were flushed. The thread
    only runs when some plugin implements this hook. A slow hook never blocks the program:
    batches that do not fit the bounded hand-off queue are dropped and counted
    (``stats()["dropped"]["handoff_full"]``); an exception is caught and counted. Nothing the
    hook itself does is recorded.

    :param records: the batch's records, each a dict in the seed 000 envelope shape — exactly
        one line of the JSONL sink: ``ts``, ``tenant``, ``workspace``, ``trace_id``,
        ``span_id``, ``parent_span_id``, ``air_id``, ``plan_hash`` (ids only when set),
        ``dialect``, ``region``, ``kind`` (``span`` | ``log`` | ``metric`` | ``reward``), then
        for a span ``evt``, ``component``, ``status``, ``start_ns``, ``end_ns``,
        ``duration_ms``, ``attributes``; for a log ``evt``, ``component``, ``severity``,
        ``body``, ``attributes``.
    """


@hookspec
def ats_shutdown() -> None:
    """ATS is shutting down: flush and release what the plugin holds.

    Called once, after the final flush, within the shutdown deadline.
    """
