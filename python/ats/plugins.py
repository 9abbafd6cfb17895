"""The plugin host: a typed facade over ``pluggy.PluginManager("ats")``.

Plugins are found through the entry-point group ``ats``; first-party plugins (``ats-sqlite3``)
register exactly like third-party ones.  Loading is fault-isolated: a plugin that fails to
import, to register, or that implements a hook that does not exist (a misspelling caught by
``check_pending``) is skipped with its reason, visible in :meth:`PluginHost.status` and in
``ats plugins``; the host and the program carry on.

This module is imported by ``import ats`` (for :data:`hookimpl`) and so imports nothing at
module level: ``pluggy`` and ``importlib.metadata`` are loaded when a host is created or a
plugin is marked.
"""

from __future__ import annotations

import sys

# A literal instead of typing.TYPE_CHECKING keeps `import ats` from importing `typing`;
# type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
    from typing import Any, Literal

    import pluggy

    from ats._entry_points import EntryPoint
    from ats.config import Config
    from ats.hookspecs import EventFamilyRegistry, Session, ToolCall
    from ats.instrumentation import Instrumentor

    PluginState = Literal["active", "skipped"]

__all__ = ["ENTRY_POINT_GROUP", "PROJECT", "PluginHost", "PluginStatus", "hookimpl"]

PROJECT = "ats"
ENTRY_POINT_GROUP = "ats"


class _LazyHookimplMarker:
    """``pluggy.HookimplMarker("ats")``, created on first use so ``import ats`` stays cheap."""

    __slots__ = ("_marker",)

    def __init__(self) -> None:
        self._marker: Any = None

    def __call__(self, function: Any = None, **options: Any) -> Any:
        marker = self._marker
        if marker is None:
            import pluggy

            marker = self._marker = pluggy.HookimplMarker(PROJECT)
        return marker(function, **options)

    def __repr__(self) -> str:
        return f"<HookimplMarker {PROJECT!r}>"


if TYPE_CHECKING:
    hookimpl: pluggy.HookimplMarker
else:
    #: Marks a plugin's hook implementations: ``from ats import hookimpl``.
    hookimpl = _LazyHookimplMarker()


class PluginStatus:
    """One row of ``ats plugins``: a plugin, where it comes from and whether it runs."""

    __slots__ = ("distribution", "name", "reason", "status", "version")

    def __init__(
        self,
        name: str,
        distribution: str | None,
        version: str | None,
        status: PluginState,
        reason: str | None = None,
    ) -> None:
        #: registration name (the entry-point name for discovered plugins)
        self.name = name
        #: the distribution that provides it, ``None`` for plugins registered from code
        self.distribution = distribution
        #: that distribution's version
        self.version = version
        #: ``"active"`` or ``"skipped"``
        self.status: PluginState = status
        #: why it was skipped (``None`` when active)
        self.reason = reason

    def as_dict(self) -> dict[str, str | None]:
        """The row as a JSON-ready mapping."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PluginStatus):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable record

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"PluginStatus({fields})"


def _count_error(where: str, exc: BaseException) -> None:
    from ats.instrumentation import count_error

    count_error(where, exc)


class PluginHost:
    """Owns the plugin manager; every hook is called through one typed method here.

    Hook calls never raise: an exception in a hook implementation is counted under
    ``"hook:<hook name>"`` (see :func:`ats.instrumentation.count_error`) and the call
    returns its neutral value.
    """

    def __init__(self) -> None:
        import pluggy

        from ats import hookspecs

        self._pm: pluggy.PluginManager = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._statuses: dict[str, PluginStatus] = {}
        self._tracing_undo: Callable[[], None] | None = None
        #: Called after each successful :meth:`register` (the runtime starts its batch drain
        #: when a plugin registered after start-up implements ``ats_process_batch``).
        self.on_register: Callable[[], None] | None = None

    # ----------------------------------------------------------------- loading

    @property
    def manager(self) -> pluggy.PluginManager:
        """The underlying pluggy manager (for tests and advanced tooling)."""
        return self._pm

    def load(
        self,
        disabled: Collection[str] = (),
        allowed: Collection[str] | None = None,
        trace_hooks: bool = False,
    ) -> list[PluginStatus]:
        """Discover and register the plugins of entry-point group ``ats``, then check them.

        :param disabled: plugin names (entry-point name or distribution name) never to load —
            they are not even imported (``plugins.disabled`` / ``ATS_DISABLED_PLUGINS``).
        :param allowed: when not ``None``, only these names are loaded
            (``plugins.allowed`` / ``ATS_PLUGINS``); an empty collection loads none.
        :param trace_hooks: write every hook call and result to stderr
            (``plugins.trace_hooks`` / ``ATS_TRACE_HOOKS``).
        :return: :meth:`status` after loading.
        """
        if trace_hooks:
            self.enable_tracing()
        disabled_set = frozenset(disabled)
        allowed_set = None if allowed is None else frozenset(allowed)
        for ep in _entry_points(ENTRY_POINT_GROUP):
            name = ep.name
            distribution, version = ep.distribution, ep.version
            names = {name} if distribution is None else {name, distribution}
            existing = self._statuses.get(name)
            if existing is not None:
                if existing.distribution != distribution:
                    self._statuses[f"{name} ({distribution})"] = PluginStatus(
                        name,
                        distribution,
                        version,
                        "skipped",
                        f"name {name!r} already taken by {existing.distribution or 'code'}",
                    )
                # else: the same distribution seen twice on sys.path; keep the first
                continue
            if names & disabled_set:
                self._statuses[name] = PluginStatus(
                    name, distribution, version, "skipped", "disabled by plugins.disabled"
                )
                continue
            if allowed_set is not None and not (names & allowed_set):
                self._statuses[name] = PluginStatus(
                    name, distribution, version, "skipped", "not in plugins.allowed"
                )
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._statuses[name] = PluginStatus(
                    name,
                    distribution,
                    version,
                    "skipped",
                    f"import failed: {type(exc).__name__}: {exc}",
                )
                continue
            self.register(plugin, name, distribution=distribution, version=version)
        self.check_pending()
        return self.status()

    def register(
        self,
        plugin: object,
        name: str | None = None,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> bool:
        """Register a plugin object or module (built-ins and tests use this directly).

        Historic hooks already called (``ats_configure``, ``ats_register_event_families``) are
        replayed for it now.  Call :meth:`check_pending` afterwards.

        :return: ``True`` when registered, ``False`` when skipped (see :meth:`status`).
        """
        plugin_name = name or self._pm.get_canonical_name(plugin)
        try:
            registered = self._pm.register(plugin, name=plugin_name)
        except Exception as exc:
            if self._pm.is_registered(plugin):
                # pluggy registered it, then a replayed historic hook raised
                self._pm.unregister(plugin)
            self._statuses[plugin_name] = PluginStatus(
                plugin_name,
                distribution,
                version,
                "skipped",
                f"registration failed: {type(exc).__name__}: {exc}",
            )
            return False
        if registered is None:
            self._statuses[plugin_name] = PluginStatus(
                plugin_name, distribution, version, "skipped", "blocked"
            )
            return False
        self._statuses[plugin_name] = PluginStatus(plugin_name, distribution, version, "active")
        if self.on_register is not None:
            try:
                self.on_register()
            except Exception as exc:
                _count_error("plugins.on_register", exc)
        return True

    def unregister(self, name: str) -> None:
        """Remove a registered plugin by name (its status row is dropped too)."""
        plugin = self._pm.get_plugin(name)
        if plugin is not None:
            self._pm.unregister(plugin)
        self._statuses.pop(name, None)

    def check_pending(self) -> list[str]:
        """Skip every plugin that implements a hook no specification declares.

        Such a hook would never be called — almost always a misspelling — so the plugin is
        unregistered and its status says which hook and what it probably meant.  Hook
        implementations marked ``optionalhook=True`` are allowed.

        :return: the names of the plugins skipped by this call.
        """
        skipped: list[str] = []
        known = self.hook_names()
        for name, plugin in list(self._pm.list_name_plugin()):
            if plugin is None:
                continue
            unknown = [
                caller.name
                for caller in self._pm.get_hookcallers(plugin) or ()
                if not caller.has_spec()
                and any(
                    impl.plugin is plugin and not impl.optionalhook
                    for impl in caller.get_hookimpls()
                )
            ]
            if not unknown:
                continue
            self._pm.unregister(plugin)
            status = self._statuses.get(name)
            hints = []
            for hook in sorted(unknown):
                hint = f"unknown hook {hook!r}"
                guess = _closest(hook, known)
                if guess is not None:
                    hint += f" (did you mean {guess!r}?)"
                hints.append(hint)
            self._statuses[name] = PluginStatus(
                name,
                status.distribution if status else None,
                status.version if status else None,
                "skipped",
                "; ".join(hints),
            )
            skipped.append(name)
        # Nothing unknown can remain; let pluggy confirm it.
        self._pm.check_pending()
        return skipped

    def status(self) -> list[PluginStatus]:
        """Every plugin seen, active or skipped with its reason, sorted by name."""
        return sorted(self._statuses.values(), key=lambda s: (s.name, s.distribution or ""))

    def hook_names(self) -> list[str]:
        """Names of all hook specifications, sorted."""
        return sorted(
            name
            for name in vars(self._pm.hook)
            if name.startswith("ats_") and getattr(self._pm.hook, name).has_spec()
        )

    # ----------------------------------------------------------------- tracing

    def enable_tracing(self, write: Callable[[str], object] | None = None) -> None:
        """Write each hook call, its arguments and its result (pluggy's tracing).

        :param write: where the lines go; default the current ``sys.stderr``.
        """
        if self._tracing_undo is not None:
            return

        def to_stderr(text: str) -> object:
            return sys.stderr.write(text)

        self._pm.trace.root.setwriter(write or to_stderr)
        self._tracing_undo = self._pm.enable_tracing()

    def disable_tracing(self) -> None:
        """Stop tracing hook calls."""
        if self._tracing_undo is not None:
            self._tracing_undo()
            self._tracing_undo = None
            self._pm.trace.root.setwriter(None)

    # ----------------------------------------------------------------- typed hook calls

    def configure(self, config: Config) -> None:
        """Call ``ats_configure`` (historic: replayed for plugins registered later)."""
        try:
            self._pm.hook.ats_configure.call_historic(kwargs={"config": config})
        except Exception as exc:
            _count_error("hook:ats_configure", exc)

    def register_event_families(self, registry: EventFamilyRegistry) -> None:
        """Call ``ats_register_event_families`` (historic)."""
        try:
            self._pm.hook.ats_register_event_families.call_historic(
                kwargs={"registry": registry}
            )
        except Exception as exc:
            _count_error("hook:ats_register_event_families", exc)

    def instrumentors(self) -> list[Instrumentor]:
        """Call ``ats_instrumentors`` and flatten the results.

        Anything that is not an :class:`~ats.instrumentation.Instrumentor` is dropped and
        counted under ``"hook:ats_instrumentors"``.
        """
        from ats.instrumentation import Instrumentor

        try:
            results: list[Iterable[object]] = self._pm.hook.ats_instrumentors()
        except Exception as exc:
            _count_error("hook:ats_instrumentors", exc)
            return []
        found: list[Instrumentor] = []
        for result in results:
            try:
                for item in result:
                    if isinstance(item, Instrumentor):
                        found.append(item)
                    else:
                        raise TypeError(f"ats_instrumentors returned {item!r}, not an Instrumentor")
            except Exception as exc:
                _count_error("hook:ats_instrumentors", exc)
        return found

    def session_start(self, session: Session) -> None:
        """Call ``ats_session_start``."""
        try:
            self._pm.hook.ats_session_start(session=session)
        except Exception as exc:
            _count_error("hook:ats_session_start", exc)

    def session_end(self, session: Session, outcome: str) -> None:
        """Call ``ats_session_end``."""
        try:
            self._pm.hook.ats_session_end(session=session, outcome=outcome)
        except Exception as exc:
            _count_error("hook:ats_session_end", exc)

    def tool_execute_before(self, call: ToolCall) -> None:
        """Call ``ats_tool_execute_before``."""
        try:
            self._pm.hook.ats_tool_execute_before(call=call)
        except Exception as exc:
            _count_error("hook:ats_tool_execute_before", exc)

    def tool_execute_after(
        self, call: ToolCall, result: object, error: BaseException | None, duration_ns: int
    ) -> None:
        """Call ``ats_tool_execute_after``."""
        try:
            self._pm.hook.ats_tool_execute_after(
                call=call, result=result, error=error, duration_ns=duration_ns
            )
        except Exception as exc:
            _count_error("hook:ats_tool_execute_after", exc)

    def wants_batches(self) -> bool:
        """True when some plugin implements ``ats_process_batch`` (then the runtime drains batches)."""
        return bool(self._pm.hook.ats_process_batch.get_hookimpls())

    def process_batch(self, records: Sequence[Mapping[str, object]]) -> bool:
        """Call ``ats_process_batch`` for one drained batch (skipped when no plugin listens).

        :return: False when a hook implementation raised (counted and reported once).
        """
        caller = self._pm.hook.ats_process_batch
        if not caller.get_hookimpls():
            return True
        try:
            caller(records=records)
        except Exception as exc:
            _count_error("hook:ats_process_batch", exc)
            return False
        return True

    def shutdown(self) -> None:
        """Call ``ats_shutdown``."""
        try:
            self._pm.hook.ats_shutdown()
        except Exception as exc:
            _count_error("hook:ats_shutdown", exc)


def _entry_points(group: str) -> list[EntryPoint]:
    from ats._entry_points import entry_points

    try:
        return entry_points(group)
    except Exception as exc:  # a broken distribution's metadata must not stop the host
        _count_error("plugins.discover", exc)
        return []


def _closest(name: str, known: Sequence[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return matches[0] if matches else None
