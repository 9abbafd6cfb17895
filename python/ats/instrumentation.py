"""Instrumentors: lazy, idempotent, reversible patching of third-party libraries.

An :class:`Instrumentor` names the modules it patches (``target_modules``) and the versions
it supports (``supported_versions``, e.g. ``">=3.7"``).  :meth:`Instrumentor.instrument`
patches a target right away when it is already imported; otherwise a single
``sys.meta_path`` finder wraps the target's loader so the patch is applied the moment the
module has finished executing on its first import (the "post-import hook" design: no
polling, no import of the target on ATS's behalf).  ``instrument()`` is idempotent and
``uninstrument()`` puts back the exact original objects recorded by :meth:`Instrumentor.replace`.

Instrumentation code must never change the user's call.  :func:`count_error` and
:class:`guard` catch an exception raised by ATS's own code, count it against a ``where``
label (on the runtime's error counter when ATS is running, on a module-level counter
otherwise) and let the user's return value and exceptions pass through untouched.
"""

from __future__ import annotations

import abc
import importlib
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType, TracebackType
from typing import Any, ClassVar, Final, ParamSpec, TypeVar

__all__ = [
    "Instrumentor",
    "UnsupportedVersionWarning",
    "count_error",
    "guard",
    "instrumentation_errors",
    "parse_version",
    "version_in_range",
]


P = ParamSpec("P")
R = TypeVar("R")


# --------------------------------------------------------------------------- errors


class UnsupportedVersionWarning(UserWarning):
    """The installed version of a target library is outside an instrumentor's range."""


_fallback_lock = threading.Lock()
# Counts used when no runtime is running (tests, plain library use); `where` -> count.
_fallback_errors: dict[str, int] = {}


def count_error(where: str, exc: BaseException) -> None:
    """Count an exception raised by instrumentation code; never raises.

    The count goes to ``ats._runtime.current().errors`` when a runtime is running (it logs
    at most once per ``where``), else to a module-level counter read by
    :func:`instrumentation_errors` (logged once per ``where`` as well).
    """
    try:
        # Imported by name: the runtime is optional here and must not be a hard import
        # dependency of instrumentation code (nor slow `import ats` down).
        runtime_mod = sys.modules.get("ats._runtime") or importlib.import_module("ats._runtime")
        # Not current(): that is None inside suppressed() blocks (the batch drain thread),
        # whose errors still belong to the running runtime.
        rt = runtime_mod._RUNTIME
        if rt is not None:
            rt.errors.count(where, exc)
            return
    except Exception:  # no runtime module yet, or a broken one: fall back below
        pass
    with _fallback_lock:
        first = where not in _fallback_errors
        _fallback_errors[where] = _fallback_errors.get(where, 0) + 1
    if first:
        try:
            import logging  # only on this rare path: logging is a measurable start-up import

            logging.getLogger("ats.instrumentation").warning(
                "ats: instrumentation error in %s (counted; the program's call is unaffected): %s: %s",
                where,
                type(exc).__name__,
                exc,
            )
        except Exception:
            pass


def instrumentation_errors() -> dict[str, int]:
    """A copy of the module-level error counts (errors counted while no runtime ran)."""
    with _fallback_lock:
        return dict(_fallback_errors)


def _reset_instrumentation_errors() -> None:
    with _fallback_lock:
        _fallback_errors.clear()


class guard:
    """Catch and count exceptions raised by instrumentation code.

    As a context manager it suppresses any :class:`Exception` raised in its body (a
    ``BaseException`` such as ``KeyboardInterrupt`` is not an instrumentation error and
    propagates)::

        with guard("sqlite3.record"):
            record(...)

    As a decorator it guards a function that belongs to ATS (a callback, a recorder): on
    error it returns ``None``.  Never decorate the user's own call with it — wrap only the
    instrumentation steps around that call, so its result and exceptions pass through.
    A ``guard`` holds no per-use state and may be created once and reused.
    """

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where: Final = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        count_error(self.where, exc)
        return True

    def __call__(self, func: Callable[P, R]) -> Callable[P, R | None]:
        where = self.where

        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                count_error(where, exc)
                return None

        guarded.__name__ = getattr(func, "__name__", "guarded")
        guarded.__qualname__ = getattr(func, "__qualname__", "guarded")
        guarded.__doc__ = func.__doc__
        guarded.__wrapped__ = func  # type: ignore[attr-defined]
        return guarded


# --------------------------------------------------------------------------- versions

_OPERATORS: Final = ("~=", "==", "!=", ">=", "<=", ">", "<")


def parse_version(text: str) -> tuple[int, ...]:
    """The numeric release part of a version string: ``"3.45.1"`` -> ``(3, 45, 1)``.

    Stops at the first non-numeric segment (``"2.0rc1"`` -> ``(2, 0)``, ``"1.2.dev3"`` ->
    ``(1, 2)``): pre-releases compare like their release, which is enough to decide whether an
    instrumentor applies.  An epoch (``"1!2.0"``) is not supported.

    :raises ValueError: when the string has no leading number.
    """
    parts: list[int] = []
    for segment in text.strip().lstrip("vV").split("."):
        digits = ""
        for ch in segment:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(segment):
            break
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    return tuple(parts)


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    width = max(len(a), len(b))
    pa = a + (0,) * (width - len(a))
    pb = b + (0,) * (width - len(b))
    return (pa > pb) - (pa < pb)


def _clause_holds(version: tuple[int, ...], clause: str) -> bool:
    for op in _OPERATORS:
        if clause.startswith(op):
            bound_text = clause[len(op) :].strip()
            break
    else:
        raise ValueError(f"version clause {clause!r} lacks one of {', '.join(_OPERATORS)}")
    if bound_text.endswith(".*"):
        if op not in ("==", "!="):
            raise ValueError(f"wildcard only allowed with == or != in {clause!r}")
        prefix = parse_version(bound_text[:-2])
        padded = version + (0,) * max(0, len(prefix) - len(version))
        matches = padded[: len(prefix)] == prefix
        return matches if op == "==" else not matches
    bound = parse_version(bound_text)
    c = _cmp(version, bound)
    if op == ">=":
        return c >= 0
    if op == "<=":
        return c <= 0
    if op == ">":
        return c > 0
    if op == "<":
        return c < 0
    if op == "==":
        return c == 0
    if op == "!=":
        return c != 0
    # "~=X.Y[.Z]": >= X.Y[.Z] and == X.* (the bound minus its last component)
    if len(bound) < 2:
        raise ValueError(f"~= needs at least two components in {clause!r}")
    return c >= 0 and version[: len(bound) - 1] == bound[:-1]


def version_in_range(version: str, spec: str) -> bool:
    """Whether ``version`` satisfies every comma-separated clause of ``spec``.

    Clauses use ``>=``, ``<=``, ``>``, ``<``, ``==``, ``!=`` and ``~=``; ``==X.*`` and
    ``!=X.*`` match a prefix.  Missing components count as zero (``3 == 3.0.0``).  An empty
    ``spec`` accepts every version.

    :raises ValueError: for a malformed clause or version.
    """
    parsed = parse_version(version)
    return all(_clause_holds(parsed, c.strip()) for c in spec.split(",") if c.strip())


# --------------------------------------------------------------------------- import hook

_PostImportCallback = Callable[[ModuleType], None]


class _PostImportLoader:
    """Delegates to the real loader and runs callbacks once the module has executed.

    It exists only for the duration of one import: ``exec_module`` puts the real loader back
    on the spec and the module before executing, so nothing that inspects
    ``module.__loader__`` afterwards (resource readers, ``linecache``, pickling) sees ATS.
    """

    def __init__(self, loader: Any, watcher: _ImportWatcher, fullname: str) -> None:
        self._loader = loader
        self._watcher = watcher
        self._fullname = fullname

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        if create is None:
            return None
        result: ModuleType | None = create(spec)
        return result

    def exec_module(self, module: ModuleType) -> None:
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        self._loader.exec_module(module)
        self._watcher._fire(self._fullname, module)


class _ImportWatcher:
    """One ``sys.meta_path`` entry shared by every instrumentor waiting for a module."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._callbacks: dict[str, list[_PostImportCallback]] = {}

    # importlib.abc.MetaPathFinder protocol
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in self._callbacks:
            return None
        # Ask the finders after us, exactly as the import system would have.
        spec: ModuleSpec | None = None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            # Not found (the import system will raise), a namespace package, or a legacy
            # loader we cannot hook safely: hand it back unchanged.
            return spec
        spec.loader = _PostImportLoader(spec.loader, self, fullname)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        return None

    def watch(self, fullname: str, callback: _PostImportCallback) -> None:
        with self._lock:
            self._callbacks.setdefault(fullname, []).append(callback)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def unwatch(self, fullname: str, callback: _PostImportCallback) -> None:
        with self._lock:
            callbacks = self._callbacks.get(fullname)
            if callbacks is not None:
                try:
                    callbacks.remove(callback)
                except ValueError:
                    pass
                if not callbacks:
                    del self._callbacks[fullname]
            if not self._callbacks:
                try:
                    sys.meta_path.remove(self)
                except ValueError:
                    pass

    def watching(self, fullname: str) -> bool:
        return fullname in self._callbacks

    def _fire(self, fullname: str, module: ModuleType) -> None:
        with self._lock:
            callbacks = list(self._callbacks.get(fullname, ()))
        for callback in callbacks:
            try:
                callback(module)
            except Exception as exc:  # an instrumentor bug never breaks the user's import
                count_error(f"import-hook:{fullname}", exc)


_watcher: Final = _ImportWatcher()


# --------------------------------------------------------------------------- instrumentor

_MISSING: Final = object()
_warned_lock = threading.Lock()
_warned: set[tuple[str, str, str]] = set()


class Instrumentor(abc.ABC):
    """Base class for everything that patches a third-party library.

    Subclasses set the class attributes and implement :meth:`_patch` / :meth:`_unpatch`::

        class Sqlite3Instrumentor(Instrumentor):
            name = "sqlite3"
            target_modules = ("sqlite3",)
            supported_versions = ">=3.7"

    ``supported_versions`` is checked against :meth:`target_version` (by default the version of
    the distribution named by ``distribution``, else the module's ``__version__``).  An
    unsupported or undeterminable version gives one :class:`UnsupportedVersionWarning` per
    (instrumentor, module, version) and no patch.

    Instances are independent: two instrumentors of the same class can coexist (each keeps
    its own originals), although patching the same attribute twice stacks wrappers.
    """

    name: ClassVar[str]
    target_modules: ClassVar[tuple[str, ...]]
    supported_versions: ClassVar[str] = ""
    distribution: ClassVar[str | None] = None

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._instrumented = False
        self._patched: dict[str, ModuleType] = {}
        # (owner, attribute, original value or _MISSING when it was inherited), in patch order
        self._originals: list[tuple[object, str, object]] = []

    # ----------------------------------------------------------------- to implement

    @abc.abstractmethod
    def _patch(self, module: ModuleType) -> None:
        """Patch ``module`` (called once per target module, after its version was checked).

        Use :meth:`replace` so :meth:`_unpatch` can restore the originals exactly.
        """

    @abc.abstractmethod
    def _unpatch(self, module: ModuleType) -> None:
        """Undo :meth:`_patch` for ``module`` (usually ``self.restore(module)``)."""

    def target_version(self, module: ModuleType) -> str | None:
        """The version compared with ``supported_versions``; ``None`` if unknown."""
        if self.distribution is not None:
            from importlib import metadata

            try:
                return metadata.version(self.distribution)
            except metadata.PackageNotFoundError:
                pass
        version = getattr(module, "__version__", None)
        return version if isinstance(version, str) else None

    # ----------------------------------------------------------------- helpers

    def replace(self, owner: object, attribute: str, value: object) -> None:
        """Set ``owner.attribute = value``, remembering the original for :meth:`restore`.

        The original is read from ``owner.__dict__`` so an inherited attribute is restored by
        deleting the override rather than by copying the parent's value down.
        """
        try:
            original = vars(owner).get(attribute, _MISSING)
        except TypeError:  # no __dict__ (slots): the attribute can only be restored by value
            original = getattr(owner, attribute, _MISSING)
        setattr(owner, attribute, value)
        self._originals.append((owner, attribute, original))

    def original(self, owner: object, attribute: str) -> object:
        """The value :meth:`replace` saved for ``owner.attribute`` (the current one if none)."""
        for saved_owner, saved_attribute, value in self._originals:
            if saved_owner is owner and saved_attribute == attribute and value is not _MISSING:
                return value
        return getattr(owner, attribute)

    def restore(self, module: ModuleType | None = None) -> None:
        """Put back every original saved by :meth:`replace` (newest first).

        With ``module``, only attributes of that module, of objects defined in it and of
        its submodules are restored.
        """
        keep: list[tuple[object, str, object]] = []
        for owner, attribute, original in reversed(self._originals):
            if module is not None and not _belongs_to(owner, module):
                keep.append((owner, attribute, original))
                continue
            if original is _MISSING:
                try:
                    delattr(owner, attribute)
                except AttributeError:
                    pass
            else:
                setattr(owner, attribute, original)
        keep.reverse()
        self._originals = keep

    # ----------------------------------------------------------------- lifecycle

    @property
    def is_instrumented(self) -> bool:
        """Whether :meth:`instrument` was called and not undone."""
        return self._instrumented

    @property
    def patched_modules(self) -> tuple[str, ...]:
        """Target modules currently patched (a target not imported yet is not listed)."""
        with self._lock:
            return tuple(self._patched)

    def instrument(self) -> bool:
        """Patch every target now or on its first import.  Idempotent.

        :returns: ``False`` when already instrumented (nothing done), else ``True``.
        """
        with self._lock:
            if self._instrumented:
                return False
            self._instrumented = True
            for fullname in self.target_modules:
                module = sys.modules.get(fullname)
                if module is not None:
                    self._apply(module)
                else:
                    _watcher.watch(fullname, self._on_import)
            return True

    def uninstrument(self) -> bool:
        """Stop waiting for imports and restore every patched module.  Idempotent.

        :returns: ``False`` when not instrumented (nothing done), else ``True``.
        """
        with self._lock:
            if not self._instrumented:
                return False
            self._instrumented = False
            for fullname in self.target_modules:
                _watcher.unwatch(fullname, self._on_import)
            for fullname, module in reversed(list(self._patched.items())):
                try:
                    self._unpatch(module)
                except Exception as exc:
                    count_error(f"{self.name}.unpatch", exc)
            self._patched.clear()
            return True

    def _on_import(self, module: ModuleType) -> None:
        with self._lock:
            if self._instrumented:
                self._apply(module)

    def _apply(self, module: ModuleType) -> None:
        fullname = module.__name__
        if fullname in self._patched:
            return
        if not self._version_supported(module):
            return
        try:
            self._patch(module)
        except Exception as exc:
            # A half-applied patch is worse than none: undo whatever replace() recorded.
            count_error(f"{self.name}.patch", exc)
            try:
                self.restore(module)
            except Exception as restore_exc:
                count_error(f"{self.name}.patch", restore_exc)
            return
        self._patched[fullname] = module

    def _version_supported(self, module: ModuleType) -> bool:
        if not self.supported_versions:
            return True
        version = self.target_version(module)
        try:
            ok = version is not None and version_in_range(version, self.supported_versions)
        except ValueError:
            ok = False
        if not ok:
            key = (self.name, module.__name__, str(version))
            with _warned_lock:
                if key in _warned:
                    return False
                _warned.add(key)
            shown = "an unknown version" if version is None else f"version {version}"
            warnings.warn(
                f"ats: {self.name} instrumentation not applied: {module.__name__} is {shown},"
                f" supported {self.supported_versions}",
                UnsupportedVersionWarning,
                stacklevel=2,
            )
        return ok


def _belongs_to(owner: object, module: ModuleType) -> bool:
    if owner is module:
        return True
    name = module.__name__
    owner_module = owner.__name__ if isinstance(owner, ModuleType) else getattr(owner, "__module__", None)
    return isinstance(owner_module, str) and (owner_module == name or owner_module.startswith(name + "."))
