"""Entry points of one group, read straight from the distributions' metadata files.

Why not ``importlib.metadata``: under ``ats-run`` discovery happens in every Python process
at start-up, and ``importlib.metadata`` costs tens of milliseconds there — importing it pulls
in ``email``, ``zipfile`` and ``csv``, and it builds a distribution object (and parses its
metadata) for everything installed. Here only two small text files are read per
distribution that declares the group: ``entry_points.txt``, and then the ``Name``/``Version``
header lines of ``METADATA`` (``PKG-INFO`` for ``.egg-info``).

Same rules as ``importlib.metadata``: ``sys.path`` order, the first distribution of a
(normalised) name wins. Distributions inside zip files on ``sys.path`` are not searched.
"""

from __future__ import annotations

import os
import sys

__all__ = ["EntryPoint", "entry_points"]

_SUFFIXES = (".dist-info", ".egg-info")


class EntryPoint:
    """One ``name = module[:attr]`` line of a group, with its distribution's name and version."""

    __slots__ = ("name", "value", "distribution", "version")

    def __init__(self, name: str, value: str, distribution: str | None, version: str | None) -> None:
        self.name = name
        self.value = value
        self.distribution = distribution
        self.version = version

    def load(self) -> object:
        import importlib

        module_name, _, attrs = self.value.partition(":")
        obj: object = importlib.import_module(module_name.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, distribution={self.distribution!r})"


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _group_lines(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` pairs of section ``[group]`` of an ``entry_points.txt``."""
    found: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            inside = line[1:-1].strip() == group
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            # Drop an extras marker (``module:attr [extra]``); it does not change what loads.
            found.append((name.strip(), value.split("[", 1)[0].strip()))
    return found


def _name_and_version(info: str) -> tuple[str | None, str | None]:
    name = version = None
    for meta in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info, meta), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break  # end of the header block
                    key, _, value = line.partition(":")
                    if key == "Name" and name is None:
                        name = value.strip()
                    elif key == "Version" and version is None:
                        version = value.strip()
        except OSError:
            continue
        break
    return name, version


def entry_points(group: str, path: list[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` installed on ``path`` (default ``sys.path``)."""
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path if path is None else path:
        directory = entry or os.curdir
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(_SUFFIXES))
        except OSError:  # missing directory, zip file, no permission
            continue
        for dirname in names:
            info = os.path.join(directory, dirname)
            # ``{name}-{version}.dist-info``: the name part never contains a hyphen.
            key = _normalise(dirname.rsplit(".", 1)[0].partition("-")[0])
            if key in seen:
                continue
            try:
                with open(os.path.join(info, "entry_points.txt"), encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                seen.add(key)  # installed, without entry points: shadows later copies too
                continue
            seen.add(key)
            pairs = _group_lines(text, group)
            if not pairs:
                continue
            dist, version = _name_and_version(info)
            found.extend(EntryPoint(name, value, dist, version) for name, value in pairs)
    return found
