"""The ``ats`` command: read the local store, export traces, check the installation.

::

    ats trace list [--limit N] [--from DATE] [--to DATE] [--json]
    ats trace show ID [--json] [--attribution]
    ats trace export ID --format jsonl|otlp-json|chrome|agent-trace --output FILE
    ats trace prune --older-than DAYS [--json]
    ats trace stats [--json]
    ats plugins [--json]
    ats validate FILE... [--allow-unregistered]
    ats config show [--json]
    ats doctor [--deep]
    ats attribution FILE [--json]

The store is ``<home>/ats.db``: ``--home`` (before or after the subcommand), else the
configured ``store.path`` (``ATS_HOME``, ``ATS_STORE_PATH``, a config file), else
``./.ats/ats.db``. The store is written by the native flusher of a running program; this
command opens it read-only (SQLite WAL readers never block the writer) except for ``trace
prune``, which deletes in one ``IMMEDIATE`` transaction (the writer notices through
``PRAGMA data_version`` and drops its cached trace keys).

``DATE`` is an ISO date (``2025-10-16``, UTC), an ISO date-time (``2025-10-16T14:00``,
``…Z``, ``…+02:00``; without an offset it is UTC) or an age (``90s``, ``30m``, ``2h``, ``7d``,
``2w``: that long before now). ``--to`` with a plain date includes that whole day.

Exit codes: 0 success, 1 failure (no store, unknown trace, invalid file, a failed doctor
check), 2 usage error. Errors are one line on stderr, never a traceback.

:func:`apply_retention` applies the ``retention.*`` configuration (seed 000 §8.4, seed 004
§4.2) to a store from outside the writer; a running ATS applies the same retention natively each
time its store opens.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    import sqlite3

    from ats.config import Config
    from ats.registry import Registry

__all__ = ["PruneCounts", "StoreError", "apply_retention", "main", "prune_store"]

#: The store layout this command reads (``meta.schema_version``).
STORE_SCHEMA_VERSION = 2
_NS_PER_DAY = 86_400 * 10**9
_U64 = (1 << 64) - 1
_WATERFALL_COLS = 40


class CliError(Exception):
    """A failure reported as ``ats: <message>`` with exit code ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class StoreError(Exception):
    """The store cannot be opened or has a layout this version does not know."""


@dataclass(frozen=True)
class PruneCounts:
    """Rows deleted by a prune, per table."""

    traces: int = 0
    spans: int = 0
    logs: int = 0
    metric_points: int = 0
    rewards: int = 0


# =========================================================================== entry point


def _store_writer_in_this_process() -> bool:
    """Whether ATS runs in this process with a store (the flusher writes it with the extension's
    own SQLite). This module reads with Python's ``sqlite3``, another SQLite copy: two copies on one
    WAL database in one process break each other's POSIX locks, and the reader's open can truncate
    the ``-shm`` the writer has mapped (SIGBUS; sqlite.org "How To Corrupt" §2.2.1)."""
    from ats import _runtime

    rt = _runtime._RUNTIME
    return rt is not None and bool(rt.config.store.enabled)


def _run_apart(argv: list[str]) -> int:
    """Runs the command in a child interpreter (with ATS off there) and relays its output."""
    import subprocess

    env = dict(os.environ, ATS_DISABLED="true")
    done = subprocess.run([sys.executable, "-m", "ats.cli", *argv], env=env, capture_output=True, text=True,
                          check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ats`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    if _store_writer_in_this_process():
        return _run_apart(sys.argv[1:] if argv is None else list(argv))
    parser = _parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 2
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except CliError as e:
        print(f"ats: {e}", file=sys.stderr)
        return e.code
    except StoreError as e:
        print(f"ats: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `ats trace list | head`: the reader left; not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - swallow the final flush
        except OSError:
            pass
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    import argparse

    from ats import __version__

    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS,
                      help="ATS home directory holding ats.db (default: $ATS_HOME or ./.ats)")
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = argparse.ArgumentParser(prog="ats", description="Read and manage ATS telemetry.")
    p.add_argument("--version", action="version", version=f"ats {__version__}")
    p.add_argument("--home", metavar="DIR", default=None,
                   help="ATS home directory holding ats.db (default: $ATS_HOME or ./.ats)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    trace = sub.add_parser("trace", help="list, show, export, prune traces; store statistics")
    tsub = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")

    t = tsub.add_parser("list", parents=[home, json_flag], help="list traces, newest first")
    t.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="at most N traces (default 20)")
    t.add_argument("--from", dest="from_", metavar="DATE", help="traces starting at or after DATE")
    t.add_argument("--to", metavar="DATE", help="traces starting before DATE")
    t.set_defaults(handler=_cmd_trace_list)

    t = tsub.add_parser("show", parents=[home, json_flag], help="a trace's span tree with a time waterfall")
    t.add_argument("trace_id", metavar="ID", help="trace id or a unique prefix of it")
    t.add_argument("--attribution", action="store_true",
                   help="list the trace's Agent Trace attribution records instead of its spans")
    t.set_defaults(handler=_cmd_trace_show)

    t = tsub.add_parser("export", parents=[home], help="write a trace as ATS JSONL, OTLP/JSON or Chrome trace")
    t.add_argument("trace_id", metavar="ID", help="trace id or a unique prefix of it")
    t.add_argument("--format", required=True, choices=("jsonl", "otlp-json", "chrome", "agent-trace"))
    t.add_argument("--output", "-o", required=True, metavar="FILE", help="output file ('-' for stdout)")
    t.set_defaults(handler=_cmd_trace_export)

    t = tsub.add_parser("prune", parents=[home, json_flag], help="delete traces and logs older than DAYS")
    t.add_argument("--older-than", required=True, type=_days, metavar="DAYS", help="1 to 365")
    t.set_defaults(handler=_cmd_trace_prune)

    t = tsub.add_parser("stats", parents=[home, json_flag], help="records by family, size, drops")
    t.set_defaults(handler=_cmd_trace_stats)
    trace.set_defaults(handler=_usage(trace))

    t = sub.add_parser("plugins", parents=[home, json_flag], help="installed plugins and their status")
    t.set_defaults(handler=_cmd_plugins)

    t = sub.add_parser("validate", parents=[home], help="check ATS JSONL files against the schemas")
    t.add_argument("files", nargs="+", metavar="FILE", help="JSONL file, or a directory of ats-*.jsonl files")
    t.add_argument("--allow-unregistered", action="store_true",
                   help="accept events no family owns (still listed)")
    t.add_argument("--max-errors", type=_positive_int, default=50, metavar="N",
                   help="print at most N errors per file (default 50)")
    t.set_defaults(handler=_cmd_validate)

    cfg = sub.add_parser("config", help="the effective configuration")
    csub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    t = csub.add_parser("show", parents=[home, json_flag], help="every key, its value and where it came from")
    t.set_defaults(handler=_cmd_config_show)
    cfg.set_defaults(handler=_usage(cfg))

    t = sub.add_parser("doctor", parents=[home], help="check the installation")
    t.add_argument("--deep", action="store_true",
                   help="also record a span through the native pipeline into a temporary store")
    t.set_defaults(handler=_cmd_doctor)

    t = sub.add_parser("attribution", parents=[home, json_flag],
                       help="who wrote each line of FILE (git blame + Agent Trace records)")
    t.add_argument("file", metavar="FILE", help="a file inside a git work tree")
    t.set_defaults(handler=_cmd_attribution)
    return p


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def show(_: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return show


def _positive_int(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return n


def _days(text: str) -> int:
    import argparse

    raw = text[:-1] if text.endswith("d") else text
    try:
        n = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 1 <= n <= 365:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 1 and 365 days")
    return n


# =========================================================================== store access


def _home(args: argparse.Namespace) -> Path:
    home: str | None = getattr(args, "home", None)
    if home:
        return Path(home)
    env = os.environ.get("ATS_HOME")
    return Path(env) if env else Path(".ats")


def _store_path(args: argparse.Namespace) -> Path:
    """``--home`` wins; else the configured ``store.path`` (so the CLI reads where the program
    wrote); a configuration that does not load falls back to ``$ATS_HOME``/``./.ats``."""
    if getattr(args, "home", None):
        return _home(args) / "ats.db"
    try:
        from ats.config import load_config

        return Path(load_config().store.path)
    except Exception as e:  # ConfigError, an unreadable file: still let the user read the store
        print(f"ats: warning: configuration not loaded ({e}); using {_home(args) / 'ats.db'}",
              file=sys.stderr)
        return _home(args) / "ats.db"


def _connect(path: Path, *, write: bool = False) -> sqlite3.Connection:
    """Open an existing store (never create one). Read-only unless ``write``."""
    import sqlite3

    if not path.is_file():
        raise StoreError(
            f"no ATS store at {path} (set ATS_HOME or pass --home DIR; a program run under "
            "ats-run creates it)"
        )
    uri = path.absolute().as_uri() + ("?mode=rw" if write else "?mode=ro")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        version = _schema_version(conn)
    except sqlite3.DatabaseError as e:
        if write:
            raise StoreError(f"cannot open the store {path}: {e}") from None
        # A read-only directory cannot hold the WAL index; read the file as it is.
        try:
            conn = sqlite3.connect(uri + "&immutable=1", uri=True)
            version = _schema_version(conn)
        except sqlite3.DatabaseError:
            raise StoreError(f"cannot open the store {path}: {e}") from None
    if version != STORE_SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"the store {path} has schema version {version}; this ats reads version "
            f"{STORE_SCHEMA_VERSION} (run the program once with this ATS to upgrade it)"
        )
    return conn


def _schema_version(conn: sqlite3.Connection) -> int:
    import sqlite3

    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            raise sqlite3.DatabaseError("not an ATS store (no meta table)") from None
        raise
    if row is None:
        raise sqlite3.DatabaseError("not an ATS store (no schema_version)")
    try:
        return int(row[0])
    except ValueError:
        raise sqlite3.DatabaseError(f"schema_version {row[0]!r} is not a number") from None


def _hex_span(v: int | None) -> str | None:
    # span ids are u64 stored bit-cast to SQLite's signed 64-bit INTEGER
    return None if v is None else f"{v & _U64:016x}"


def _iso(ns: int) -> str:
    """RFC 3339 UTC with milliseconds (truncated), the envelope's ``ts`` format."""
    from datetime import datetime, timezone

    secs, rem = divmod(ns, 10**9)
    try:
        dt = datetime.fromtimestamp(secs, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return str(ns)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 10**6:03d}Z"


def _now_ns() -> int:
    import time

    return time.time_ns()


def parse_when(text: str, *, now_ns: int, end: bool = False) -> int:
    """A ``--from``/``--to`` value as Unix nanoseconds (see the module doc)."""
    import re
    from datetime import datetime, timedelta, timezone

    t = text.strip()
    m = re.fullmatch(r"([0-9]+)\s*([smhdw])", t)
    if m:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}[m.group(2)]
        return now_ns - int(m.group(1)) * unit * 10**9
    date_only = re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", t) is not None
    try:
        dt = datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith(("Z", "z")) else t)
    except ValueError:
        raise CliError(
            f"cannot read the date {text!r}: use 2025-10-16, 2025-10-16T14:00[:00][Z|+02:00] "
            "or an age like 30m, 2h, 7d", code=2) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    if date_only and end:
        dt += timedelta(days=1)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


@dataclass
class _Trace:
    key: int
    trace_id: str
    name: str
    start_ns: int
    end_ns: int
    spans: int
    errors: int

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def status(self) -> str:
        return "error" if self.errors else "ok"


_TRACE_COLS = (
    "t.trace_key, lower(hex(t.trace_id)), coalesce(t.root_name, "
    "(SELECT s.name FROM spans s WHERE s.trace_key = t.trace_key ORDER BY s.start_ns LIMIT 1), ''), "
    "t.start_ns, t.end_ns, t.span_count, t.error_count"
)


def _resolve_trace(conn: sqlite3.Connection, given: str) -> _Trace:
    """A full id or a unique prefix (like git). Uses the ``traces(trace_id)`` index: the
    prefix becomes the blob range [prefix000…, prefixfff…]."""
    import re

    p = given.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{1,32}", p):
        raise CliError(f"{given!r} is not a trace id (1 to 32 hex digits)")
    lo, hi = bytes.fromhex(p.ljust(32, "0")), bytes.fromhex(p.ljust(32, "f"))
    rows = conn.execute(
        f"SELECT {_TRACE_COLS} FROM traces t WHERE t.trace_id BETWEEN ? AND ? ORDER BY t.trace_id LIMIT 4",
        (lo, hi),
    ).fetchall()
    if not rows:
        raise CliError(f"no trace {given!r} in the store")
    if len(rows) > 1:
        shown = ", ".join(r[1] for r in rows[:3]) + (", …" if len(rows) > 3 else "")
        raise CliError(f"trace id prefix {given!r} is ambiguous: {shown}")
    return _Trace(*rows[0])


@dataclass
class _Span:
    span_id: int
    parent_id: int | None
    name: str
    component: str
    start_ns: int
    end_ns: int
    status: str
    attributes_json: str
    tenant: str
    workspace: str
    region: str
    dialect: str
    air_id: int | None
    plan_hash: int | None
    depth: int = 0
    is_last: bool = True
    lineage: tuple[bool, ...] = ()  # for each ancestor below the root: was it a last child?

    def attributes(self) -> dict[str, Any]:
        import json

        try:
            value = json.loads(self.attributes_json)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def span_hex(self) -> str:
        return f"{self.span_id & _U64:016x}"

    @property
    def parent_hex(self) -> str | None:
        return _hex_span(self.parent_id)


@dataclass
class _Log:
    ts_ns: int
    span_id: int | None
    event: str
    component: str
    severity: int
    body: str
    tenant: str
    workspace: str
    region: str
    dialect: str
    air_id: int | None
    plan_hash: int | None
    attributes_json: str


def _load_spans(conn: sqlite3.Connection, trace: _Trace) -> list[_Span]:
    rows = conn.execute(
        "SELECT span_id, parent_id, name, component, start_ns, end_ns, status, attributes, "
        "tenant, workspace, region, dialect, air_id, plan_hash FROM spans WHERE trace_key = ?",
        (trace.key,),
    ).fetchall()
    return _tree_order([_Span(*r) for r in rows])


def _load_logs(conn: sqlite3.Connection, trace: _Trace) -> list[_Log]:
    rows = conn.execute(
        "SELECT ts_ns, span_id, event, component, severity, body, tenant, workspace, region, dialect, "
        "air_id, plan_hash, attributes FROM logs WHERE trace_id = ? ORDER BY ts_ns",
        (bytes.fromhex(trace.trace_id),),
    ).fetchall()
    return [_Log(*r) for r in rows]


def _tree_order(spans: list[_Span]) -> list[_Span]:
    """Depth-first, children by start time; spans whose parent is not in the trace (a remote
    parent, a span not stored) are roots. Iterative, so a 100k-deep chain cannot overflow, and
    cycle-proof (malformed ids): every span appears exactly once."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start_ns, -spans[i].end_ns, spans[i].span_id))
    first: dict[int, int] = {}
    for i in order:
        first.setdefault(spans[i].span_id, i)
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for i in order:
        parent = spans[i].parent_id
        owner = first.get(parent) if parent is not None else None
        if owner is None or owner == i:
            roots.append(i)
        else:
            children.setdefault(owner, []).append(i)
    out: list[_Span] = []
    seen: set[int] = set()

    def walk(root: int) -> None:
        stack: list[tuple[int, int, bool, tuple[bool, ...]]] = [(root, 0, True, ())]
        while stack:
            i, depth, last, lineage = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            s = spans[i]
            s.depth, s.is_last, s.lineage = depth, last, lineage
            out.append(s)
            kids = [k for k in children.get(i, ()) if k not in seen]
            below = lineage + (last,) if depth > 0 else lineage
            for n, k in enumerate(reversed(kids)):
                stack.append((k, depth + 1, n == 0, below))

    for r in roots:
        walk(r)
    for i in order:  # members of a parent cycle: reachable from no root
        if i not in seen:
            walk(i)
    return out


# =========================================================================== output helpers


@dataclass(frozen=True)
class _Glyphs:
    branch: str
    last: str
    pipe: str
    space: str
    bar: str
    ok: str
    fail: str


_UNICODE = _Glyphs("├─ ", "└─ ", "│  ", "   ", "█", "✓", "✗")
_ASCII = _Glyphs("|- ", "`- ", "|  ", "   ", "#", "OK", "X")


def _glyphs(stream: IO[str]) -> _Glyphs:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "├─└│█✓✗…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return _ASCII
    return _UNICODE


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _fmt_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.3f} ms"
    return f"{ms / 1000:.3f} s"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _print_json(value: Any) -> None:
    import json

    print(json.dumps(value, indent=2, ensure_ascii=False))


# =========================================================================== trace list


def _cmd_trace_list(args: argparse.Namespace) -> int:
    now = _now_ns()
    lo = parse_when(args.from_, now_ns=now) if args.from_ else -(1 << 63)
    hi = parse_when(args.to, now_ns=now, end=True) if args.to else (1 << 63) - 1
    path = _store_path(args)
    conn = _connect(path)
    try:
        traces = [
            _Trace(*r)
            for r in conn.execute(
                f"SELECT {_TRACE_COLS} FROM traces t WHERE t.start_ns >= ? AND t.start_ns < ? "
                "ORDER BY t.start_ns DESC, t.trace_key DESC LIMIT ?",
                (lo, hi, args.limit),
            )
        ]
    finally:
        conn.close()
    if args.json:
        _print_json([
            {"trace_id": t.trace_id, "name": t.name, "start": _iso(t.start_ns),
             "duration_ms": t.duration_ms, "spans": t.spans, "status": t.status}
            for t in traces
        ])
        return 0
    if not traces:
        print(f"no traces in {path}" + (" in that time range" if args.from_ or args.to else ""))
        return 0
    rows = [[t.trace_id, _iso(t.start_ns), _fmt_ms(t.duration_ms), str(t.spans), t.status, t.name]
            for t in traces]
    print(_table(["TRACE ID", "START (UTC)", "DURATION", "SPANS", "STATUS", "NAME"], rows,
                 right=frozenset({2, 3})))
    return 0


# =========================================================================== trace show

_SEVERITY = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def _severity(n: int) -> str:
    return _SEVERITY[(n - 1) // 4] if 1 <= n <= 24 else str(n)


def _waterfall(start: int, end: int, t0: int, total: int, g: _Glyphs, cols: int = _WATERFALL_COLS) -> str:
    """A bar of ``cols`` cells: the span's share of the trace's time window, at least one cell."""
    a = min(max((start - t0) * cols // total, 0), cols - 1)
    b = min(max(-((t0 - end) * cols // total), a + 1), cols)  # ceil division
    return "|" + " " * a + g.bar * (b - a) + " " * (cols - b) + "|"


def _cmd_trace_show(args: argparse.Namespace) -> int:
    if getattr(args, "attribution", False):
        return _cmd_trace_show_attribution(args)
    conn = _connect(_store_path(args))
    try:
        trace = _resolve_trace(conn, args.trace_id)
        spans = _load_spans(conn, trace)
        logs = _load_logs(conn, trace)
    finally:
        conn.close()
    if args.json:
        _print_json({
            "trace_id": trace.trace_id,
            "spans": [
                {"span_id": s.span_hex, "parent_id": s.parent_hex, "name": s.name, "start_ns": s.start_ns,
                 "end_ns": s.end_ns, "status": s.status, "attributes": s.attributes()}
                for s in spans
            ],
        })
        return 0
    print(render_tree(trace, spans, logs, _glyphs(sys.stdout)))
    return 0


def render_tree(trace: _Trace, spans: list[_Span], logs: list[_Log], g: _Glyphs) -> str:
    """The text of ``ats trace show``: header, one line per span, then the trace's logs."""
    lines = [
        f"trace {trace.trace_id}  {trace.name}  {_iso(trace.start_ns)}  {_fmt_ms(trace.duration_ms)}  "
        f"{trace.spans} span{'s' if trace.spans != 1 else ''}  {trace.status}"
    ]
    if not spans:
        lines.append("  (no spans stored)")
        return "\n".join(lines)
    t0 = min(s.start_ns for s in spans)
    t1 = max(s.end_ns for s in spans)
    total = max(t1 - t0, 1)
    labels = []
    for s in spans:
        prefix = "" if s.depth == 0 else "".join(g.space if last else g.pipe for last in s.lineage) + (
            g.last if s.is_last else g.branch)
        labels.append(prefix + s.name)
    width = min(max(len(x) for x in labels), 60)
    # A plan captured after the span was written (ats.plans) is linked by its log record.
    plan_of = {log.span_id: log.plan_hash for log in logs
               if log.event == "air.plan.ok" and log.span_id is not None and log.plan_hash is not None}
    for s, label in zip(spans, labels):
        attrs = s.attributes()
        notes = []
        if "error.type" in attrs:
            notes.append(f"error.type={attrs['error.type']}")
        plan_hash = s.plan_hash if s.plan_hash is not None else plan_of.get(s.span_id)
        if plan_hash is not None:
            notes.append(f"plan_hash=ph:{plan_hash & _U64:016x}")
        if "db.statement" in attrs:
            notes.append(f"db.statement={_clip(str(attrs['db.statement']), 100)}")
        dur = _fmt_ms((s.end_ns - s.start_ns) / 1e6)
        lines.append(
            f"  {_clip(label, width).ljust(width)}  {_waterfall(s.start_ns, s.end_ns, t0, total, g)}"
            f"  {dur:>11}  {s.status:<5}" + ("  " + "  ".join(notes) if notes else "")
        )
    if logs:
        lines.append("logs")
        for log in logs:
            lines.append(
                f"  +{_fmt_ms((log.ts_ns - t0) / 1e6):>11}  {_severity(log.severity):<5}  {log.event}  "
                f"{_clip(log.body, 120)}".rstrip()
            )
    return "\n".join(line.rstrip() for line in lines)


# =========================================================================== trace export


def _cmd_trace_export(args: argparse.Namespace) -> int:
    if args.format == "agent-trace":
        return _cmd_trace_export_agent_trace(args)
    conn = _connect(_store_path(args))
    try:
        trace = _resolve_trace(conn, args.trace_id)
        spans = _load_spans(conn, trace)
        logs = _load_logs(conn, trace)
    finally:
        conn.close()
    if args.format == "jsonl":
        text = "".join(jsonl_span(trace.trace_id, s) for s in spans) + "".join(
            jsonl_log(trace.trace_id, log) for log in logs)
    else:
        import json

        doc = otlp_json(trace.trace_id, spans, logs) if args.format == "otlp-json" else chrome_trace(
            trace.trace_id, spans)
        text = json.dumps(doc, ensure_ascii=False) + "\n"
    if not _write_output(args.output, text):
        return 0
    extra = f" and {len(logs)} log{'s' if len(logs) != 1 else ''}" if logs and args.format == "jsonl" else ""
    print(f"exported {len(spans)} span{'s' if len(spans) != 1 else ''}{extra} of trace {trace.trace_id} "
          f"to {args.output} ({args.format})")
    return 0


def _write_output(output: str, text: str) -> bool:
    """Write an export to ``output`` (``-``: stdout). True when it went to a file (then the
    command says so on stdout)."""
    if output == "-":
        sys.stdout.write(text)
        return False
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise CliError(f"cannot write {output}: {e.strerror or e}") from None
    return True


def _q(text: str) -> str:
    import json

    # Same escaping as the native JSON writer: only ", \ and control characters.
    return json.dumps(text, ensure_ascii=False)


def _ms_from_ns(ns: int) -> str:
    """``duration_ms`` exactly as the native JSONL sink writes it (shortest round-trip float)."""
    if 100 <= ns < 10**15:
        whole, frac = divmod(ns, 10**6)
        if frac == 0:
            return f"{whole}.0"
        return f"{whole}." + f"{frac:06d}".rstrip("0")
    return _rust_float(ns / 1e6)


def _rust_float(v: float) -> str:
    # Rust's `{:?}`: like Python's repr, but exponents are written `1e16` / `1e-7`.
    text = repr(v)
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{int(exp)}"
    return text


def _envelope(ts_ns: int, tenant: str, workspace: str, trace_id: str, span_id: int | None,
              parent_id: int | None, air_id: int | None, plan_hash: int | None, dialect: str,
              region: str, kind: str) -> str:
    out = [f'{{"ts":"{_iso(ts_ns)}","tenant":{_q(tenant)},"workspace":{_q(workspace)}',
           f',"trace_id":"{trace_id}"']
    if span_id:
        out.append(f',"span_id":"{span_id & _U64:016x}"')
    if parent_id:
        out.append(f',"parent_span_id":"{parent_id & _U64:016x}"')
    if air_id is not None:
        out.append(f',"air_id":"air:Q-{air_id & _U64:016x}"')
    if plan_hash is not None:
        out.append(f',"plan_hash":"ph:{plan_hash & _U64:016x}"')
    out.append(f',"dialect":{_q(dialect)},"region":{_q(region)},"kind":"{kind}"')
    return "".join(out)


def jsonl_span(trace_id: str, s: _Span) -> str:
    """One span as the native JSONL sink writes it (same keys, order and number formats)."""
    evt = s.name + {"ok": ".ok", "error": ".error"}.get(s.status, "")
    return (
        _envelope(s.start_ns, s.tenant, s.workspace, trace_id, s.span_id, s.parent_id, s.air_id,
                  s.plan_hash, s.dialect, s.region, "span")
        + f',"evt":{_q(evt)},"component":{_q(s.component)},"status":"{s.status}"'
        + f',"start_ns":{s.start_ns},"end_ns":{s.end_ns}'
        + f',"duration_ms":{_ms_from_ns(max(s.end_ns - s.start_ns, 0))}'
        + f',"attributes":{_compact_object(s.attributes_json)}}}\n'
    )


def jsonl_log(trace_id: str, log: _Log) -> str:
    """One log record as the native JSONL sink writes it."""
    return (
        _envelope(log.ts_ns, log.tenant, log.workspace, trace_id, log.span_id, None, log.air_id,
                  log.plan_hash, log.dialect, log.region, "log")
        + f',"evt":{_q(log.event)},"component":{_q(log.component)},"severity":{log.severity}'
        + f',"body":{_q(log.body)},"attributes":{_compact_object(log.attributes_json)}}}\n'
    )


def _compact_object(text: str) -> str:
    # The store keeps attributes as the native writer's JSON text; reuse it byte for byte
    # (re-encoding would change float spellings). Anything unexpected becomes {}.
    t = text.strip()
    return t if t.startswith("{") and t.endswith("}") and "\n" not in t else "{}"


def _otlp_value(v: Any) -> dict[str, Any] | None:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # proto3 JSON: int64 as a decimal string
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    return None  # null (a NaN/inf float in the store): OTLP has no value for it


def _otlp_attrs(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k, v in attrs.items():
        value = _otlp_value(v)
        if value is not None:
            out.append({"key": k, "value": value})
    return out


def otlp_json(trace_id: str, spans: list[_Span], logs: list[_Log]) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest``: one resource per (tenant, workspace, region),
    one scope per component; logs attached to a span of the trace become span events."""
    import json

    from ats import __version__

    events: dict[int, list[dict[str, Any]]] = {}
    for log in logs:
        if log.span_id is None:
            continue
        try:
            extra = json.loads(log.attributes_json)
        except ValueError:
            extra = {}
        attrs = {"log.severity_number": log.severity, "log.body": log.body,
                 **(extra if isinstance(extra, dict) else {})}
        events.setdefault(log.span_id, []).append(
            {"timeUnixNano": str(log.ts_ns), "name": log.event, "attributes": _otlp_attrs(attrs)})
    resources: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    for s in spans:
        attrs = s.attributes()
        if s.air_id is not None:
            attrs.setdefault("db.sqlx.air_id", f"air:Q-{s.air_id & _U64:016x}")
        if s.plan_hash is not None:
            attrs.setdefault("db.sqlx.plan_hash", f"ph:{s.plan_hash & _U64:016x}")
        span: dict[str, Any] = {"traceId": trace_id, "spanId": s.span_hex}
        if s.parent_id is not None:
            span["parentSpanId"] = s.parent_hex
        span["name"] = s.name
        span["kind"] = 3 if s.name.startswith("driver.") else 1  # SPAN_KIND_CLIENT / _INTERNAL
        span["startTimeUnixNano"] = str(s.start_ns)
        span["endTimeUnixNano"] = str(s.end_ns)
        span["attributes"] = _otlp_attrs(attrs)
        if s.span_id in events:
            span["events"] = events[s.span_id]
        status: dict[str, Any] = {}
        if s.status == "ok":
            status = {"code": 1}
        elif s.status == "error":
            status = {"code": 2}
            message = attrs.get("error.message") or attrs.get("error.type")
            if isinstance(message, str):
                status["message"] = message
        span["status"] = status
        scopes = resources.setdefault((s.tenant, s.workspace, s.region), {})
        scopes.setdefault(s.component, []).append(span)
    out = []
    for (tenant, workspace, region), scopes in resources.items():
        rattrs = {"sqlx.tenant": tenant, "sqlx.workspace": workspace}
        if region:
            rattrs["cloud.region"] = region
        out.append({
            "resource": {"attributes": _otlp_attrs(rattrs)},
            "scopeSpans": [{"scope": {"name": component or "ats", "version": __version__}, "spans": ss}
                           for component, ss in scopes.items()],
        })
    return {"resourceSpans": out}


def chrome_trace(trace_id: str, spans: list[_Span]) -> dict[str, Any]:
    """Trace Event Format (chrome://tracing, Perfetto): one complete ("X") event per span.

    Times are microseconds from the trace's first span (``otherData.start_unix_ns`` keeps the
    absolute start). Each span goes on the first "thread" lane where it nests inside the open
    spans or starts after they end, because viewers stack "X" events of one thread by
    containment: concurrent siblings need lanes of their own.
    """
    t0 = min((s.start_ns for s in spans), default=0)
    lanes: list[list[int]] = []  # per lane: stack of open end times
    lane_of: dict[int, int] = {}
    events = []

    def fits(n: int, start: int, end: int) -> bool:
        stack = lanes[n]
        while stack and stack[-1] <= start:
            stack.pop()
        return not stack or stack[-1] >= end

    for s in sorted(spans, key=lambda x: (x.start_ns, -x.end_ns)):
        # The parent's lane first, so a child is drawn under its own parent when it can be.
        parent_lane = lane_of.get(s.parent_id) if s.parent_id is not None else None
        order = ([parent_lane] if parent_lane is not None else []) + list(range(len(lanes)))
        n = next((i for i in order if fits(i, s.start_ns, s.end_ns)), len(lanes))
        if n == len(lanes):
            lanes.append([])
        lanes[n].append(s.end_ns)
        lane_of.setdefault(s.span_id, n)
        # ATS's own keys last: an attribute called "status" must not hide the span's status.
        args: dict[str, Any] = {**s.attributes(), "span_id": s.span_hex, "parent_id": s.parent_hex,
                                "status": s.status}
        events.append({
            "name": s.name,
            "cat": s.component or s.name.split(".", 1)[0],
            "ph": "X",
            "ts": (s.start_ns - t0) / 1000,
            "dur": max(s.end_ns - s.start_ns, 0) / 1000,
            "pid": 1,
            "tid": n + 1,
            "args": args,
        })
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"trace_id": trace_id, "start_unix_ns": t0}}


# =========================================================================== prune / retention


def prune_store(
    store_path: str | os.PathLike[str],
    *,
    spans_before_ns: int | None = None,
    logs_before_ns: int | None = None,
    metrics_before_ns: int | None = None,
    rewards_before_ns: int | None = None,
) -> PruneCounts:
    """Delete rows strictly older than each cutoff, in one ``IMMEDIATE`` transaction.

    Same rules as the native store's prune: spans that started before the cutoff in traces
    that started before it; traces left without spans are deleted and the others get their
    summary (start, end, counts) recomputed; logs, metric points and rewards by ``ts_ns``.
    A missing store is left alone (nothing to prune). Raises :class:`StoreError`.
    """
    import sqlite3

    path = Path(store_path)
    if not path.is_file():
        return PruneCounts()
    conn = _connect(path, write=True)
    conn.isolation_level = None  # explicit transaction below
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            spans = traces = logs = metric_points = rewards = 0
            if spans_before_ns is not None:
                spans = conn.execute(
                    "DELETE FROM spans WHERE start_ns < ?1 AND trace_key IN "
                    "(SELECT trace_key FROM traces WHERE start_ns < ?1)", (spans_before_ns,)).rowcount
                traces = conn.execute(
                    "DELETE FROM traces WHERE start_ns < ?1 AND NOT EXISTS "
                    "(SELECT 1 FROM spans s WHERE s.trace_key = traces.trace_key)", (spans_before_ns,)).rowcount
                conn.execute(
                    "UPDATE traces SET (start_ns, end_ns, span_count, error_count) = "
                    "(SELECT min(start_ns), max(end_ns), count(*), sum(status = 'error') "
                    " FROM spans s WHERE s.trace_key = traces.trace_key) WHERE start_ns < ?1",
                    (spans_before_ns,))
            if logs_before_ns is not None:
                logs = conn.execute("DELETE FROM logs WHERE ts_ns < ?", (logs_before_ns,)).rowcount
            if metrics_before_ns is not None:
                metric_points = conn.execute(
                    "DELETE FROM metric_points WHERE ts_ns < ?", (metrics_before_ns,)).rowcount
            if rewards_before_ns is not None:
                rewards = conn.execute("DELETE FROM rewards WHERE ts_ns < ?", (rewards_before_ns,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as e:
        raise StoreError(f"cannot prune {path}: {e}") from None
    finally:
        conn.close()
    return PruneCounts(traces, spans, logs, metric_points, rewards)


def apply_retention(
    store_path: str | os.PathLike[str], config: Config | None = None, *, now_ns: int | None = None
) -> PruneCounts:
    """Apply the retention configuration (``retention.traces_days`` 30, ``logs_days`` 30,
    ``metrics_days`` 400, ``learning_days`` 90 by default: seed 000 §8.4) to a store.

    The runtime calls this at start-up; it is safe while a flusher writes (SQLite locking).
    ``config`` defaults to :func:`ats.config.load_config`. A missing store is a no-op.
    """
    if config is None:
        from ats.config import load_config

        config = load_config()
    now = _now_ns() if now_ns is None else now_ns
    r = config.retention
    return prune_store(
        store_path,
        spans_before_ns=now - r.traces_days * _NS_PER_DAY,
        logs_before_ns=now - r.logs_days * _NS_PER_DAY,
        metrics_before_ns=now - r.metrics_days * _NS_PER_DAY,
        rewards_before_ns=now - r.learning_days * _NS_PER_DAY,
    )


def _cmd_trace_prune(args: argparse.Namespace) -> int:
    path = _store_path(args)
    _connect(path).close()  # a clear "no store" error rather than a silent no-op
    cutoff = _now_ns() - args.older_than * _NS_PER_DAY
    counts = prune_store(path, spans_before_ns=cutoff, logs_before_ns=cutoff)
    if args.json:
        _print_json({"older_than_days": args.older_than, "traces": counts.traces, "spans": counts.spans,
                     "logs": counts.logs})
        return 0
    print(f"pruned {counts.traces} trace{'s' if counts.traces != 1 else ''} ({counts.spans} "
          f"span{'s' if counts.spans != 1 else ''}) and {counts.logs} log{'s' if counts.logs != 1 else ''} "
          f"older than {args.older_than} day{'s' if args.older_than != 1 else ''} from {path}")
    return 0


# =========================================================================== trace stats

#: ``drops`` rows whose reason starts with this are rejections (e.g. ``rejected:unregistered_event``).
REJECTION_PREFIX = "rejected:"


def store_stats(path: Path, registry: Registry | None = None) -> dict[str, Any]:
    """What ``ats trace stats --json`` prints."""
    from ats.registry import default_registry

    reg = default_registry() if registry is None else registry
    conn = _connect(path)
    try:
        def count(table: str) -> int:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

        def by_family(sql: str) -> dict[str, int]:
            fams: dict[str, int] = {}
            for name, n in conn.execute(sql):
                fam = reg.family_of(name)
                fams[fam] = fams.get(fam, 0) + int(n)
            return dict(sorted(fams.items(), key=lambda kv: (-kv[1], kv[0])))

        spans = by_family("SELECT name, count(*) FROM spans GROUP BY name")
        logs = by_family("SELECT event, count(*) FROM logs GROUP BY event")
        drops: dict[str, int] = {}
        rejections: dict[str, int] = {}
        for reason, n in conn.execute("SELECT reason, count FROM drops ORDER BY reason"):
            if reason.startswith(REJECTION_PREFIX):
                rejections[reason[len(REJECTION_PREFIX):]] = int(n)
            else:
                drops[reason] = int(n)
        lows, highs = [], []
        for lo_sql, hi_sql in (
            ("SELECT min(start_ns) FROM traces", "SELECT max(end_ns) FROM traces"),
            ("SELECT min(ts_ns) FROM logs", "SELECT max(ts_ns) FROM logs"),
            ("SELECT min(ts_ns) FROM metric_points", "SELECT max(ts_ns) FROM metric_points"),
            ("SELECT min(ts_ns) FROM rewards", "SELECT max(ts_ns) FROM rewards"),
        ):
            lo, hi = conn.execute(lo_sql).fetchone()[0], conn.execute(hi_sql).fetchone()[0]
            if lo is not None:
                lows.append(int(lo))
            if hi is not None:
                highs.append(int(hi))
        result: dict[str, Any] = {
            "store": str(path),
            "bytes": 0,
            "db_bytes": 0,
            "wal_bytes": 0,
            "schema_version": STORE_SCHEMA_VERSION,
            "traces": count("traces"),
            "spans": sum(spans.values()),
            "logs": sum(logs.values()),
            "metric_points": count("metric_points"),
            "rewards": count("rewards"),
            "spans_by_family": spans,
            "logs_by_family": logs,
            "drops": drops,
            "rejections": rejections,
            "oldest": _iso(min(lows)) if lows else None,
            "newest": _iso(max(highs)) if highs else None,
        }
    finally:
        conn.close()
    db_bytes = path.stat().st_size
    wal = path.with_name(path.name + "-wal")
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    result.update(bytes=db_bytes + wal_bytes, db_bytes=db_bytes, wal_bytes=wal_bytes)
    return result


def _cmd_trace_stats(args: argparse.Namespace) -> int:
    stats = store_stats(_store_path(args), _registry_with_plugins())
    if args.json:
        _print_json(stats)
        return 0

    def counts(d: Mapping[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"

    print(f"store         {stats['store']}")
    print(f"size          {stats['bytes']:,} bytes (database {stats['db_bytes']:,}, WAL {stats['wal_bytes']:,})")
    print(f"records       {stats['traces']} traces, {stats['spans']} spans, {stats['logs']} logs, "
          f"{stats['metric_points']} metric points, {stats['rewards']} rewards")
    print(f"oldest        {stats['oldest'] or '-'}")
    print(f"newest        {stats['newest'] or '-'}")
    print(f"spans         {counts(stats['spans_by_family'])}")
    print(f"logs          {counts(stats['logs_by_family'])}")
    print(f"drops         {counts(stats['drops'])}")
    print(f"rejections    {counts(stats['rejections'])}")
    return 0


# =========================================================================== plugins


def _load_config_or_none() -> Config | None:
    try:
        from ats.config import load_config

        return load_config()
    except Exception:
        return None


def _plugin_host() -> Any:
    """A loaded ``ats.plugins.PluginHost`` (imported lazily: the host is its own module)."""
    from ats.plugins import PluginHost  # type: ignore[import-not-found,unused-ignore]

    config = _load_config_or_none()
    host = PluginHost()
    if config is None:
        host.load()
    else:
        host.load(disabled=config.plugins.disabled, allowed=config.plugins.allowed)
    return host


def _plugin_rows() -> list[dict[str, str | None]]:
    """One ``{name, distribution, version, status, reason}`` per plugin (``ats plugins``)."""
    rows: list[dict[str, str | None]] = [dict(s.as_dict()) for s in _plugin_host().status()]
    return rows


def _registry_with_plugins() -> Registry:
    """The built-in families plus those plugins register; built-ins only when no host is available."""
    from ats.registry import default_registry

    try:
        host = _plugin_host()
    except Exception:
        return default_registry()
    return default_registry(host)


def _cmd_plugins(args: argparse.Namespace) -> int:
    try:
        rows = _plugin_rows()
    except ImportError as e:
        raise CliError(f"the plugin host is not available: {e}") from None
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no plugins installed (entry-point group 'ats')")
        return 0
    print(_table(["NAME", "DISTRIBUTION", "VERSION", "STATUS", "REASON"],
                 [[r["name"] or "", r["distribution"] or "-", r["version"] or "-", r["status"] or "",
                   r["reason"] or ""] for r in rows]))
    return 0


# =========================================================================== validate


def _jsonl_files(given: str) -> list[Path]:
    p = Path(given)
    if p.is_dir():
        files = sorted(p.glob("ats-*.jsonl"))
        if not files:
            raise CliError(f"no ats-*.jsonl files in {p}")
        return files
    if not p.exists():
        raise CliError(f"no such file: {p}")
    return [p]


def _cmd_validate(args: argparse.Namespace) -> int:
    from ats.registry import validate_file

    registry = _registry_with_plugins()
    files = [f for given in args.files for f in _jsonl_files(given)]
    failed = 0
    for f in files:
        try:
            report = validate_file(f, registry, allow_unregistered=args.allow_unregistered,
                                   max_errors=args.max_errors)
        except OSError as e:
            raise CliError(f"cannot read {f}: {e.strerror or e}") from None
        for line in report.format_errors():
            print(line)
        if report.error_count > len(report.errors):
            print(f"{f}: … {report.error_count - len(report.errors)} more errors")
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.kinds.items())) or "no records"
        verdict = "ok" if report.ok else f"{report.error_count} error{'s' if report.error_count != 1 else ''}"
        print(f"{f}: {report.lines} lines ({kinds}): {verdict}")
        if report.unregistered and args.allow_unregistered:
            names = ", ".join(sorted(report.unregistered))
            print(f"{f}: unregistered events: {names}")
        failed += not report.ok
    return 1 if failed else 0


# =========================================================================== config show


def _cmd_config_show(args: argparse.Namespace) -> int:
    from ats.config import ConfigError, load_config

    overrides = {"home": args.home} if getattr(args, "home", None) else None
    try:
        rows = load_config(overrides=overrides).as_rows()
    except ConfigError as e:
        raise CliError(str(e)) from None
    if args.json:
        _print_json([{"key": k, "value": v, "source": s} for k, v, s in rows])
        return 0
    print(_table(["KEY", "VALUE", "SOURCE"], [list(r) for r in rows]))
    return 0


# =========================================================================== doctor


@dataclass(frozen=True)
class Check:
    """One ``ats doctor`` line."""

    name: str
    ok: bool
    detail: str


def doctor_checks(home: str | None = None, *, deep: bool = False) -> list[Check]:
    """Every check of ``ats doctor``. None of them needs a running program or its flusher;
    ``deep`` adds a round trip through a fresh native pipeline into a temporary store."""
    checks: list[Check] = []

    def run(name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, detail = fn()
        except Exception as e:  # a check must report, never crash the doctor
            ok, detail = False, f"{type(e).__name__}: {e}"
        checks.append(Check(name, ok, detail))

    def native() -> tuple[bool, str]:
        from ats import _native

        return True, f"ats._native {_native.__version__} ({Path(_native.__file__ or '?').name})"

    config_holder: list[Config] = []

    def config() -> tuple[bool, str]:
        from ats.config import ConfigError, load_config

        try:
            cfg = load_config(overrides={"home": home} if home else None)
        except ConfigError as e:
            return False, str(e)
        config_holder.append(cfg)
        files = sorted({s for s in cfg.sources.values() if s.startswith("file ")})
        return True, "valid" + (f" ({', '.join(files)})" if files else " (defaults and environment)")

    def store_path() -> Path:
        if home:
            return Path(home) / "ats.db"
        if config_holder:
            return Path(config_holder[0].store.path)
        env = os.environ.get("ATS_HOME")
        return (Path(env) if env else Path(".ats")) / "ats.db"

    def writable() -> tuple[bool, str]:
        directory = store_path().parent
        probe = directory
        while not probe.exists():
            if probe.parent == probe:
                break
            probe = probe.parent
        if not probe.is_dir():
            return False, f"{probe} is not a directory"
        if not os.access(probe, os.W_OK | os.X_OK):
            return False, f"{probe} is not writable"
        if probe == directory:
            return True, f"{directory} is writable"
        return True, f"{directory} does not exist yet; {probe} is writable so it can be created"

    def schema() -> tuple[bool, str]:
        import sqlite3

        path = store_path()
        if not path.exists():
            return True, f"no store yet at {path} (created on the first run)"
        uri = path.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        try:
            version = _schema_version(conn)
        except sqlite3.DatabaseError as e:
            return False, f"{path}: {e}"
        finally:
            conn.close()
        if version == STORE_SCHEMA_VERSION:
            return True, f"{path}: schema version {version}"
        if version < STORE_SCHEMA_VERSION:
            return True, f"{path}: schema version {version}, upgraded to {STORE_SCHEMA_VERSION} on the next run"
        return False, f"{path}: schema version {version} is newer than this ATS ({STORE_SCHEMA_VERSION})"

    def plugins() -> tuple[bool, str]:
        rows = _plugin_rows()
        broken = [r for r in rows if r["status"] != "active" and (r["reason"] or "").startswith("import failed")]
        active = sum(r["status"] == "active" for r in rows)
        if broken:
            return False, "; ".join(f"{r['name']}: {r['reason']}" for r in broken)
        return True, f"{active} active, {len(rows) - active} skipped"

    def families() -> tuple[bool, str]:
        from ats.registry import BUILTIN_FAMILIES, default_registry

        try:
            host = _plugin_host()
        except ImportError:
            host = None
        reg = default_registry(host)
        return True, f"{len(reg)} event families ({len(reg) - len(BUILTIN_FAMILIES)} from plugins)"

    def pipeline() -> tuple[bool, str]:
        import sqlite3
        import tempfile
        import time

        from ats import _native

        with tempfile.TemporaryDirectory(prefix="ats-doctor-") as tmp:
            db = Path(tmp) / "ats.db"
            started = time.perf_counter()
            p = _native.Pipeline(store_path=str(db), flush_interval_ms=10)
            now = time.time_ns()
            p.record_span("kernel.exec", "doctor", _native.Pipeline.new_trace_id(), 1, 0, now, now + 1000, 1)
            if not p.shutdown(5.0):
                return False, "the pipeline did not drain within 5 s"
            conn = sqlite3.connect(db)
            try:
                n = conn.execute("SELECT count(*) FROM spans").fetchone()[0]
            finally:
                conn.close()
            ms = (time.perf_counter() - started) * 1000
        if n != 1:
            return False, f"recorded 1 span, the store has {n}"
        return True, f"recorded a span and read it back from a temporary store in {ms:.0f} ms"

    run("native module", native)
    run("configuration", config)
    run("store directory", writable)
    run("store schema", schema)
    run("plugins", plugins)
    run("event families", families)
    if deep:
        run("native pipeline", pipeline)
    return checks


def _cmd_doctor(args: argparse.Namespace) -> int:
    checks = doctor_checks(getattr(args, "home", None), deep=args.deep)
    g = _glyphs(sys.stdout)
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"{g.ok if c.ok else g.fail} {c.name.ljust(width)}  {c.detail}")
    return 0 if all(c.ok for c in checks) else 1


# =========================================================================== attribution (Agent Trace)
# ``ats trace show ID --attribution``, ``ats trace export ID --format agent-trace`` and
# ``ats attribution FILE``; the record logic lives in :mod:`ats.attribution`.


def _attribution_rows(conn: sqlite3.Connection, trace: _Trace | None = None,
                      path: str | None = None) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The ``attribution.range`` log records (of one trace, or of one file path) in time order,
    each with its store link (``trace_id``, ``span_id``)."""
    import json

    sql = "SELECT lower(hex(trace_id)), span_id, attributes FROM logs WHERE event = 'attribution.range'"
    params: list[Any] = []
    if trace is not None:
        sql += " AND trace_id = ?"
        params.append(bytes.fromhex(trace.trace_id))
    if path is not None:
        sql += " AND json_extract(attributes, '$.\"file.path\"') = ?"
        params.append(path)
    out = []
    for trace_hex, span_id, attrs_json in conn.execute(sql + " ORDER BY ts_ns", params):
        try:
            attrs = json.loads(attrs_json)
        except ValueError:
            continue
        if isinstance(attrs, dict) and "attribution.id" in attrs:
            link = {"trace_id": trace_hex or "", "span_id": _hex_span(span_id) or ""}
            out.append((attrs, link))
    return out


def _trace_attribution(args: argparse.Namespace) -> tuple[_Trace, list[dict[str, Any]]]:
    from ats.attribution import agent_trace_records

    conn = _connect(_store_path(args))
    try:
        trace = _resolve_trace(conn, args.trace_id)
        rows = _attribution_rows(conn, trace)
    finally:
        conn.close()
    return trace, agent_trace_records([a for a, _ in rows], [link for _, link in rows])


def _cmd_trace_show_attribution(args: argparse.Namespace) -> int:
    trace, records = _trace_attribution(args)
    if args.json:
        _print_json(records)
        return 0
    if not records:
        print(f"trace {trace.trace_id}: no attribution records")
        return 0
    table = []
    for rec in records:
        revision = rec.get("vcs", {}).get("revision", "")[:12] or "-"
        tool = f"{rec['tool']['name']}@{rec['tool']['version']}"
        for f in rec["files"]:
            for conv in f["conversations"]:
                who = conv.get("contributor", {})
                for r in conv["ranges"]:
                    table.append([f["path"], f"{r['start_line']}-{r['end_line']}", who.get("type", "unknown"),
                                  who.get("model_id", "-"), tool, revision, rec["id"]])
    print(_table(["FILE", "LINES", "CONTRIBUTOR", "MODEL", "TOOL", "REVISION", "RECORD"], table))
    return 0


def _cmd_trace_export_agent_trace(args: argparse.Namespace) -> int:
    import json

    trace, records = _trace_attribution(args)
    # One record per line, as the specification's reference implementation stores them.
    text = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    if not _write_output(args.output, text):
        return 0
    print(f"exported {len(records)} Agent Trace record{'s' if len(records) != 1 else ''} of trace "
          f"{trace.trace_id} to {args.output} (agent-trace)")
    return 0


def _cmd_attribution(args: argparse.Namespace) -> int:
    from ats.attribution import GitError, blame, locate, render_blame

    if not Path(args.file).is_file():
        raise CliError(f"no file {args.file}")
    try:
        _top, rel, _root = locate(args.file)
    except GitError as e:
        raise CliError(f"{args.file} is not inside a git work tree ({e})") from None
    conn = _connect(_store_path(args))
    try:
        rows = [a for a, _ in _attribution_rows(conn, path=rel)]
    finally:
        conn.close()
    try:
        lines = blame(args.file, rows)
    except GitError as e:
        raise CliError(str(e)) from None
    if args.json:
        _print_json([x.as_dict() for x in lines])
        return 0
    if lines:
        print(render_blame(lines))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
