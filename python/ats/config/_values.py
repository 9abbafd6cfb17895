"""Value parsers and the one error type of ``ats.config``.

Every parser takes the raw value as a file, an environment variable or
``ats.init()`` gave it (strings from the environment, typed values from TOML,
YAML and Python) and returns the typed value, or raises :class:`Invalid`.
The caller turns :class:`Invalid` into a :class:`ConfigError` naming the key,
the value, what is allowed and where the value came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # the same behaviour without compiling methods at start-up (see _record)
    from ats.config._record import record as dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration key or value ATS cannot use.

    ``str(err)`` is one line naming the key, the value, what is allowed and the
    source, e.g. ``ats config: sampling.ratio = 1.5 (from env
    ATS_SAMPLING_RATIO): expected a number between 0 and 1``.
    """

    def __init__(
        self,
        key: str,
        value: object,
        allowed: str,
        source: str,
        *,
        unknown: bool = False,
        suggestion: str | None = None,
    ) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.source = source
        self.unknown = unknown
        self.suggestion = suggestion
        problem = "unknown key, " if unknown else ""
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        super().__init__(
            f"ats config: {_oneline(key)} = {render(value)} (from {_oneline(source)}): "
            f"{problem}expected {_oneline(allowed)}{hint}"
        )


def _oneline(s: str) -> str:
    """Escapes control characters so that an error stays on one line."""
    return s if s.isprintable() else repr(s)[1:-1]


class Invalid(Exception):
    """Raised by a parser; ``allowed`` replaces the key's usual description."""

    def __init__(self, allowed: str | None = None) -> None:
        super().__init__(allowed)
        self.allowed = allowed


@dataclass(frozen=True)
class Raw:
    """A value as one source gave it. ``base`` anchors relative paths."""

    value: object
    source: str
    base: Path
    # The name the user wrote (env var or seed-shaped YAML path), for errors.
    label: str | None = None


Parser = Callable[[object, Path], Any]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")
_DAYS = re.compile(r"\s*(\d+)\s*d?\s*", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_NONE = {"none", "null"}
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off"}


def render(value: object) -> str:
    """Shows a value the way a user would type it back."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        plain = value.isprintable() and not any(c.isspace() or c in "'\"" for c in value)
        return value if value and plain else repr(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    return repr(value)


def render_bytes(n: int) -> str:
    for unit, mult in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def is_none(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _NONE)


def parse_bool(value: object, _base: Path) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in TRUE:
            return True
        if v in FALSE:
            return False
    raise Invalid()


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise Invalid()
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            raise Invalid() from None
    else:
        raise Invalid()
    if not math.isfinite(f):
        raise Invalid()
    return f


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise Invalid()
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise Invalid()


def number(lo: float, hi: float, *, lo_open: bool = False) -> Parser:
    def parse(value: object, _base: Path) -> float:
        f = _number(value)
        if f < lo or f > hi or (lo_open and f == lo):
            raise Invalid()
        return f
    return parse


def integer(lo: int, hi: int) -> Parser:
    def parse(value: object, _base: Path) -> int:
        n = _integer(value)
        if not lo <= n <= hi:
            raise Invalid()
        return n
    return parse


def days(lo: int, hi: int) -> Parser:
    """Days as an integer or a ``30d`` string (seed 001 §13)."""
    def parse(value: object, _base: Path) -> int:
        if isinstance(value, str):
            m = _DAYS.fullmatch(value)
            if not m:
                raise Invalid()
            value = int(m.group(1))
        n = _integer(value)
        if not lo <= n <= hi:
            raise Invalid()
        return n
    return parse


def byte_size(lo: int, hi: int) -> Parser:
    """An integer, or a string like ``64MiB`` / ``10MB`` / ``512KiB`` / ``100B``."""
    def parse(value: object, _base: Path) -> int:
        if isinstance(value, str):
            m = _SIZE.fullmatch(value)
            mult = _UNITS.get(m.group(2).lower()) if m else None
            if m is None or mult is None:
                raise Invalid()
            n = int(float(m.group(1)) * mult)
        else:
            n = _integer(value)
        if not lo <= n <= hi:
            raise Invalid()
        return n
    return parse


def optional(inner: Parser) -> Parser:
    """``None`` (or the strings ``none``/``null``) means "not set"."""
    def parse(value: object, base: Path) -> Any:
        return None if is_none(value) else inner(value, base)
    return parse


def one_of(*choices: str) -> Parser:
    def parse(value: object, _base: Path) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise Invalid()
    return parse


def text(value: object, _base: Path) -> str:
    if isinstance(value, str):
        return value.strip()
    raise Invalid()


def nonempty_text(value: object, base: Path) -> str:
    s = text(value, base)
    if not s:
        raise Invalid()
    return s


def path(value: object, base: Path) -> Path:
    """Relative paths are anchored at the config file's directory (or cwd)."""
    if isinstance(value, Path) or (isinstance(value, str) and value.strip()):
        p = Path(value.strip() if isinstance(value, str) else value)
        try:
            p = p.expanduser()
        except RuntimeError:  # `~name` of a user that does not exist
            raise Invalid() from None
        return p if p.is_absolute() else base / p
    raise Invalid()


def url_or_empty(value: object, _base: Path) -> str:
    if isinstance(value, str) and (not value.strip() or re.fullmatch(r"https?://\S+", value.strip())):
        return value.strip()
    raise Invalid()


def names(value: object, _base: Path) -> tuple[str, ...]:
    """A comma-separated string or a list of plugin names."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise Invalid()
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise Invalid()
        name = item.strip()
        if not name:
            continue
        if not _NAME.fullmatch(name):
            raise Invalid()
        if name not in out:
            out.append(name)
    return tuple(out)


def allow_list(value: object, base: Path) -> tuple[str, ...] | None:
    """Like :func:`names`; ``none``/``all``/``*`` mean every plugin is allowed."""
    if is_none(value) or (isinstance(value, str) and value.strip().lower() in ("all", "*")):
        return None
    return names(value, base)


def resource_attributes(value: object, _base: Path) -> dict[str, str]:
    """OTel ``k=v,k2=v2`` (W3C baggage-style) with percent-encoded keys and values, or a mapping."""
    from urllib.parse import unquote

    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k or isinstance(v, (Mapping, list, tuple)) or v is None:
                raise Invalid()
            out[k] = render(v) if isinstance(v, bool) else str(v)
        return out
    if not isinstance(value, str):
        raise Invalid()
    out = {}
    for item in value.split(","):
        if not item.strip():
            continue
        k, sep, v = item.partition("=")
        k = unquote(k.strip(), errors="strict")
        if not sep or not k:
            raise Invalid()
        out[k] = unquote(v.strip(), errors="strict")
    return out


def _json_list(value: object) -> object:
    if isinstance(value, str) and value.lstrip().startswith("["):
        import json

        try:
            return json.loads(value)
        except ValueError:
            raise Invalid() from None
    return value


def _rate(value: object) -> float:
    f = _number(value)
    if not 0.0 <= f <= 1.0:
        raise Invalid()
    return f


def sampling_rules(value: object, _base: Path) -> tuple[tuple[str, float, float], ...]:
    """A list of ``{prefix, ok_rate, error_rate=1.0}``; from the environment JSON
    or ``prefix:ok_rate[:error_rate]`` items separated by commas."""
    value = _json_list(value)
    if isinstance(value, str):
        value = [item.strip().split(":") for item in value.split(",") if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise Invalid()
    out: list[tuple[str, float, float]] = []
    for item in value:
        if isinstance(item, Mapping):
            if not set(item) <= {"prefix", "ok_rate", "error_rate"} or "prefix" not in item or "ok_rate" not in item:
                raise Invalid()
            fields = [item["prefix"], item["ok_rate"], item.get("error_rate", 1.0)]
        elif isinstance(item, (list, tuple)) and len(item) in (2, 3):
            fields = [*item, 1.0][:3]
        else:
            raise Invalid()
        prefix = fields[0]
        if not isinstance(prefix, str) or not prefix.strip():
            raise Invalid()
        if any(r[0] == prefix.strip() for r in out):
            raise Invalid(f"each prefix at most once (duplicate {prefix.strip()!r})")
        out.append((prefix.strip(), _rate(fields[1]), _rate(fields[2])))
    return tuple(out)


def redaction_patterns(value: object, _base: Path) -> tuple[tuple[str, str, str], ...]:
    """A list of ``{name, regex, marker}`` (Rust regex syntax); JSON in the environment."""
    value = _json_list(value)
    if not isinstance(value, (list, tuple)):
        raise Invalid()
    out: list[tuple[str, str, str]] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"name", "regex", "marker"}:
            raise Invalid()
        fields = (item["name"], item["regex"], item["marker"])
        if not all(isinstance(f, str) and f for f in fields):
            raise Invalid()
        out.append((str(fields[0]), str(fields[1]), str(fields[2])))
    if out:
        # The native scrubber compiles them exactly as the flusher will.
        from ats._native import Scrubber

        try:
            Scrubber(list(out))
        except ValueError as e:
            # Regex errors span several lines; the message must stay on one.
            detail = " ".join(str(e).split())
            raise Invalid(f"{{name, regex, marker}} items whose regex compiles ({detail})") from None
    return tuple(out)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def headers(value: object, base: Path) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS``: like :func:`resource_attributes`; names must be HTTP
    tokens and values free of control characters (they go on the wire as they are)."""
    out = resource_attributes(value, base)
    for k, v in out.items():
        if not _TOKEN.fullmatch(k) or any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in v):
            raise Invalid()
    return out


def mask_pairs(value: object) -> object:
    """``k=v,...`` (or a mapping) with every value replaced by ``***``, for messages."""
    if isinstance(value, Mapping):
        return {k: "***" for k in value}
    if isinstance(value, str):
        return ",".join(k + ("=***" if sep else "") for k, sep, _ in (i.partition("=") for i in value.split(",")))
    return value


def existing_file(value: object, base: Path) -> Path:
    """A path (anchored like :func:`path`) that names an existing file."""
    p = path(value, base)
    if not p.is_file():
        raise Invalid()
    return p


def spool_size(value: object, base: Path) -> int:
    """0 turns the spool off; otherwise a byte size between 1MiB and 1TiB."""
    if (isinstance(value, int) and not isinstance(value, bool) and value == 0) or value == "0":
        return 0
    n: int = byte_size(1 << 20, 1 << 40)(value, base)
    return n


#: SLO classes of seed 001 §7: low-latency OLTP, bulk ETL, analytics, system/DDL.
SLO_CLASSES = ("L", "B", "A", "S")
_SLO_RULE_FIELDS = frozenset({"class", "operations", "tables", "summary", "min_latency_ms"})


def _names(value: object, upper: bool) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise Invalid()
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise Invalid()
        out.append(item.strip().upper() if upper else item.strip().lower())
    return tuple(out)


def slo_rules(
    value: object, _base: Path
) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...], str | None, float | None], ...]:
    """An ordered list of ``{class, operations?, tables?, summary?, min_latency_ms?}``; JSON in
    the environment.  A rule matches when every condition it names holds; the first match wins."""
    value = _json_list(value)
    if not isinstance(value, (list, tuple)):
        raise Invalid()
    out = []
    for item in value:
        if not isinstance(item, Mapping) or "class" not in item or not set(item) <= _SLO_RULE_FIELDS:
            raise Invalid()
        cls = item["class"]
        if cls not in SLO_CLASSES:
            raise Invalid(f"rules whose class is one of {', '.join(SLO_CLASSES)} (got {cls!r})")
        ops = _names(item["operations"], True) if "operations" in item else ()
        tables = _names(item["tables"], False) if "tables" in item else ()
        summary = item.get("summary")
        if summary is not None and (not isinstance(summary, str) or not summary.strip()):
            raise Invalid()
        latency = item.get("min_latency_ms")
        if latency is not None:
            latency = _number(latency)
            if latency < 0:
                raise Invalid()
        out.append((str(cls), ops, tables, summary, latency))
    return tuple(out)


def slo_class(value: object, _base: Path) -> str:
    if isinstance(value, str) and value.strip().upper() in SLO_CLASSES:
        return value.strip().upper()
    raise Invalid()
