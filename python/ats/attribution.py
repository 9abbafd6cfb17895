"""Agent Trace code attribution (seed 004 §1.2 goal 1; Agent Trace specification 0.1.0).

``with ats.attribution.track(repo, tool="edit_file", tool_version="1.2", contributor="ai",
model_id="anthropic/claude-sonnet-4-20250514"):`` snapshots the work tree before and after the
block and records, for each file the block changed, the line ranges it added or rewrote. This is
what the specification's FAQ suggests for code an agent writes indirectly (a script it runs).

Snapshot: ``git ls-files -m -o --exclude-standard`` names the files that differ from the index
(modified and untracked, ignoring ignored ones); their contents are kept with a SHA-256 each. After
the block the same listing is taken again; a listed file whose hash changed, or a file listed only
after (it was clean before, so its former text is the index's), was touched. ``difflib`` compares
the two texts line by line; each inserted or replaced block of the new text is one range
(1-indexed, inclusive), with ``content_hash`` = ``sha256:`` + the hex SHA-256 of the block's lines
joined with ``\\n``.

Each range is one ATS log record ``attribution.range``, correlated with the current span (the
``tool.execute`` span of :func:`ats.tool_call`): ``attribution.id`` (the Agent Trace record id,
one per tracked block), ``attribution.timestamp``, ``file.path`` (relative to the repository
root), ``range.start_line``, ``range.end_line``, ``range.content_hash``, ``range.line_hashes``
(a 12-hex SHA-256 prefix per line, space separated: how ``ats attribution FILE`` finds lines that
moved), ``contributor.type``, ``contributor.model_id``, ``vcs.type`` (``git``), ``vcs.revision``
(``git rev-parse HEAD`` at edit time: the specification's convention), ``vcs.root_hash`` (which
repository, without storing its path), ``tool.name``, ``tool.version``, ``session.id``. No line
of text is stored.

:func:`agent_trace_records` turns those records back into Agent Trace records
(``ats trace export ID --format agent-trace``); :func:`blame` attributes each current line of a
file (``ats attribution FILE``).

Attribution never breaks the tracked block: git missing, not a work tree, an unreadable file —
each is counted (``ats doctor``) and the block runs on unrecorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ats import _runtime

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from types import TracebackType

__all__ = [
    "CONTRIBUTOR_TYPES",
    "SPEC_VERSION",
    "LineAttribution",
    "Range",
    "Tracker",
    "agent_trace_records",
    "blame",
    "check_contributor",
    "normalize_model_id",
    "track",
]

#: The Agent Trace specification version the records follow.
SPEC_VERSION = "0.1.0"
CONTRIBUTOR_TYPES = ("human", "ai", "mixed", "unknown")
EVENT = "attribution.range"
_MODEL_ID_MAX = 250
#: Files larger than this are not snapshotted (their changes are not attributed).
MAX_FILE_BYTES = 4 << 20
#: At most this much text is held by one snapshot.
MAX_SNAPSHOT_BYTES = 64 << 20
_UNCOMMITTED = "0" * 40
_PROVIDER_PREFIXES = (("claude-", "anthropic/"), ("gpt-", "openai/"), ("o1", "openai/"), ("o3", "openai/"),
                      ("gemini-", "google/"))


def check_contributor(contributor: str, model_id: str | None) -> None:
    """Raise ``ValueError`` naming the allowed values when the Agent Trace schema would reject them."""
    if contributor not in CONTRIBUTOR_TYPES:
        raise ValueError(f"contributor {contributor!r} is not one of {', '.join(CONTRIBUTOR_TYPES)}")
    if model_id is not None and not 0 < len(model_id) <= _MODEL_ID_MAX:
        raise ValueError(f"model_id must be 1 to {_MODEL_ID_MAX} characters, got {len(model_id)}")


def normalize_model_id(model: str) -> str:
    """``provider/model`` (models.dev convention): a bare ``claude-…`` becomes ``anthropic/claude-…``,
    ``gpt-``/``o1``/``o3`` ``openai/``, ``gemini-`` ``google/``; anything else is kept."""
    if "/" in model:
        return model
    for prefix, provider in _PROVIDER_PREFIXES:
        if model.startswith(prefix):
            return provider + model
    return model


# =========================================================================== git


class GitError(Exception):
    """A git command failed (not a work tree, git missing, ...)."""


def _git(cwd: str | os.PathLike[str], *args: str) -> bytes:
    import subprocess

    try:
        done = subprocess.run(["git", "-C", os.fspath(cwd), *args], capture_output=True, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise GitError(f"git {args[0]}: {e}") from None
    if done.returncode != 0:
        raise GitError(f"git {args[0]}: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


def _toplevel(path: str | os.PathLike[str]) -> Path:
    return Path(_git(path, "rev-parse", "--show-toplevel").decode().strip())


def _head(top: Path) -> str | None:
    try:
        return _git(top, "rev-parse", "--verify", "-q", "HEAD").decode().strip() or None
    except GitError:  # no commit yet
        return None


def _dirty(top: Path, pathspec: str) -> list[str]:
    out = _git(top, "ls-files", "-z", "-m", "-o", "--exclude-standard", "--", pathspec)
    return sorted({p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p})


def _index_text(top: Path, rel: str) -> bytes | None:
    try:
        return _git(top, "cat-file", "blob", f":{rel}")
    except GitError:  # not in the index: a new file
        return None


def _root_hash(top: Path) -> str:
    import hashlib

    return hashlib.sha256(os.fsencode(top.resolve())).hexdigest()[:16]


# =========================================================================== hashing and diff


def _line_hash(line: str) -> str:
    import hashlib

    return hashlib.sha256(line.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def content_hash(lines: Sequence[str]) -> str:
    """``sha256:<hex>`` of ``lines`` joined with ``\\n`` (line endings not included)."""
    import hashlib

    return "sha256:" + hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def _text_lines(data: bytes | None) -> list[str] | None:
    """The lines of a text file; ``None`` for a binary one (NUL byte or not UTF-8)."""
    if data is None:
        return []
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True)
class Range:
    """Lines ``start_line``..``end_line`` (1-indexed, inclusive) of the new text."""

    start_line: int
    end_line: int
    content_hash: str
    line_hashes: tuple[str, ...]


def changed_ranges(before: Sequence[str], after: Sequence[str]) -> list[Range]:
    """The blocks of ``after`` that ``before`` does not have (inserted or replaced lines)."""
    import difflib

    ranges = []
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert") and j2 > j1:
            block = after[j1:j2]
            ranges.append(Range(j1 + 1, j2, content_hash(block), tuple(_line_hash(x) for x in block)))
    return ranges


# =========================================================================== tracking


@dataclass
class _Snapshot:
    files: dict[str, bytes | None] = field(default_factory=dict)  # None: too large to keep
    size: int = 0


def _read(path: Path) -> bytes | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


class Tracker:
    """Records what a block changes in a git work tree; see :func:`track`.

    After the block, :attr:`record` is the Agent Trace record (a dict valid against the
    specification's schema) or ``None`` when nothing was attributed.
    """

    def __init__(self, root: str | os.PathLike[str], *, tool: str, tool_version: str | None = None,
                 contributor: str = "ai", model_id: str | None = None, session_id: str | None = None,
                 conversation_url: str | None = None) -> None:
        check_contributor(contributor, model_id)
        self.root = Path(root)
        self.tool = tool
        self.tool_version = tool_version
        self.contributor = contributor
        self.model_id = normalize_model_id(model_id) if model_id is not None else None
        self.session_id = session_id
        self.conversation_url = conversation_url
        self.record: dict[str, Any] | None = None
        self._top: Path | None = None
        self._pathspec = "."
        self._revision: str | None = None
        self._before = _Snapshot()

    def __enter__(self) -> Tracker:
        try:
            top = _toplevel(self.root)
            rel = os.path.relpath(self.root.resolve(), top.resolve())
            self._pathspec = "." if rel == "." else Path(rel).as_posix()
            self._revision = _head(top)
            self._before = self._snapshot(top)
            self._top = top
        except Exception as exc:  # GitError and anything unexpected: the block runs unrecorded
            _runtime.count_error("attribution.snapshot", exc)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        top = self._top
        if top is None:
            return
        try:
            files = self._diff(top)
            if files:
                self.record = self._emit(top, files)
        except Exception as e:
            _runtime.count_error("attribution.diff", e)

    def _snapshot(self, top: Path) -> _Snapshot:
        snap = _Snapshot()
        for rel in _dirty(top, self._pathspec):
            data = _read(top / rel)
            if data is not None and snap.size + len(data) > MAX_SNAPSHOT_BYTES:
                data = None
            snap.files[rel] = data
            snap.size += len(data) if data is not None else 0
        return snap

    def _diff(self, top: Path) -> dict[str, list[Range]]:
        before = self._before.files
        changed: dict[str, list[Range]] = {}
        for rel in sorted(set(before) | set(_dirty(top, self._pathspec))):
            new = _read(top / rel)
            if rel in before:
                old = before[rel]
                if old is None or old == new:
                    continue  # unchanged, or too large to have been kept
            else:
                old = _index_text(top, rel)
            new_lines, old_lines = _text_lines(new), _text_lines(old)
            if new_lines is None or old_lines is None:
                continue
            ranges = changed_ranges(old_lines, new_lines)
            if ranges:
                changed[rel] = ranges
        return changed

    def _emit(self, top: Path, files: Mapping[str, list[Range]]) -> dict[str, Any]:
        import uuid
        from datetime import datetime, timezone

        from ats.api import emit

        record_id = str(uuid.uuid4())
        now = datetime.now(timezone.utc)
        timestamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        common: dict[str, str | int] = {
            "attribution.id": record_id, "attribution.timestamp": timestamp,
            "contributor.type": self.contributor, "vcs.type": "git", "vcs.root_hash": _root_hash(top),
            "tool.name": self.tool, "tool.version": self.tool_version or "unknown",
        }
        if self.model_id is not None:
            common["contributor.model_id"] = self.model_id
        if self._revision is not None:
            common["vcs.revision"] = self._revision
        if self.session_id is not None:
            common["session.id"] = self.session_id
        if self.conversation_url is not None:
            common["conversation.url"] = self.conversation_url
        rows = []
        for rel, ranges in files.items():
            for r in ranges:
                # Any: emit's keyword parameters (severity, body) are str, the attributes are not.
                attrs: dict[str, Any] = dict(common)
                attrs.update({"file.path": rel, "range.start_line": r.start_line, "range.end_line": r.end_line,
                              "range.content_hash": r.content_hash, "range.line_hashes": " ".join(r.line_hashes)})
                emit(EVENT, **attrs)
                rows.append(attrs)
        [rec] = agent_trace_records(rows)
        return rec


def track(root: str | os.PathLike[str], *, tool: str, tool_version: str | None = None, contributor: str = "ai",
          model_id: str | None = None, session_id: str | None = None,
          conversation_url: str | None = None) -> Tracker:
    """Attribute what the ``with`` block changes under ``root`` (inside a git work tree).

    :param tool: the tool that writes (Agent Trace ``tool.name``).
    :param tool_version: its version (``tool.version``; ``"unknown"`` when not given).
    :param contributor: ``ai``, ``human``, ``mixed`` or ``unknown``.
    :param model_id: the model for ``ai``/``mixed``; a bare ``claude-…``/``gpt-…`` gets its provider.
    :param session_id: the agent session (default: the current :func:`ats.session`).
    :param conversation_url: a URI to look the conversation up (Agent Trace ``url``).
    :raises ValueError: a contributor or model id the Agent Trace schema rejects.
    """
    if session_id is None:
        from ats.sessions import current_session

        current = current_session()
        session_id = current.session_id if current is not None else None
    return Tracker(root, tool=tool, tool_version=tool_version, contributor=contributor, model_id=model_id,
                   session_id=session_id, conversation_url=conversation_url)


# =========================================================================== Agent Trace records


def _contributor(attrs: Mapping[str, Any]) -> dict[str, str]:
    out = {"type": str(attrs.get("contributor.type", "unknown"))}
    if attrs.get("contributor.model_id"):
        out["model_id"] = str(attrs["contributor.model_id"])
    return out


def agent_trace_records(rows: Iterable[Mapping[str, Any]],
                        links: Iterable[Mapping[str, str]] | None = None) -> list[dict[str, Any]]:
    """Agent Trace 0.1.0 records from ``attribution.range`` attributes, one per ``attribution.id``
    in first-seen order; files and ranges keep their order.

    :param links: per row, extra ``metadata.ats`` entries (the store's ``trace_id``/``span_id``).
    """
    records: dict[str, dict[str, Any]] = {}
    link_list = list(links) if links is not None else None
    for i, attrs in enumerate(rows):
        rid = str(attrs["attribution.id"])
        rec = records.get(rid)
        if rec is None:
            rec = {"version": SPEC_VERSION, "id": rid, "timestamp": str(attrs["attribution.timestamp"])}
            if attrs.get("vcs.revision"):
                rec["vcs"] = {"type": str(attrs.get("vcs.type", "git")), "revision": str(attrs["vcs.revision"])}
            rec["tool"] = {"name": str(attrs["tool.name"]), "version": str(attrs.get("tool.version", "unknown"))}
            rec["files"] = []
            meta: dict[str, Any] = {}
            if attrs.get("session.id"):
                meta["session_id"] = str(attrs["session.id"])
            if link_list is not None:
                meta.update(link_list[i])
            rec["metadata"] = {"ats": meta}
            records[rid] = rec
        path = str(attrs["file.path"])
        entry = next((f for f in rec["files"] if f["path"] == path), None)
        if entry is None:
            conversation: dict[str, Any] = {"contributor": _contributor(attrs), "ranges": []}
            if attrs.get("conversation.url"):
                conversation["url"] = str(attrs["conversation.url"])
            entry = {"path": path, "conversations": [conversation]}
            rec["files"].append(entry)
        entry["conversations"][0]["ranges"].append({
            "start_line": int(attrs["range.start_line"]), "end_line": int(attrs["range.end_line"]),
            "content_hash": str(attrs["range.content_hash"]),
        })
    return list(records.values())


# =========================================================================== blame


@dataclass(frozen=True)
class LineAttribution:
    """Who wrote line ``line`` of the current text: ``contributor`` (``ai``/``human``/``mixed``/
    ``unknown``), ``model_id``, the commit that last touched it (``None``: not committed yet) and
    the Agent Trace record that attributes it."""

    line: int
    text: str
    contributor: str
    model_id: str | None
    commit: str | None
    attribution_id: str | None

    def as_dict(self) -> dict[str, Any]:
        contributor: dict[str, str] = {"type": self.contributor}
        if self.model_id is not None:
            contributor["model_id"] = self.model_id
        return {"line": self.line, "contributor": contributor, "commit": self.commit,
                "attribution_id": self.attribution_id}


def locate(path: str | os.PathLike[str]) -> tuple[Path, str, str]:
    """``(repository root, path relative to it, vcs.root_hash)`` of a file; raises :class:`GitError`."""
    p = Path(path).resolve()
    top = _toplevel(p.parent).resolve()
    return top, p.relative_to(top).as_posix(), _root_hash(top)


def _blame_commits(top: Path, rel: str, n_lines: int) -> list[str]:
    """The commit that last touched each current line (``0`` * 40 for uncommitted lines)."""
    try:
        out = _git(top, "blame", "--porcelain", "--", rel).decode("utf-8", "surrogateescape")
    except GitError:  # untracked file: every line is uncommitted
        return [_UNCOMMITTED] * n_lines
    commits = [_UNCOMMITTED] * n_lines
    expect_header = True
    for line in out.split("\n"):
        if expect_header:
            parts = line.split(" ")
            if len(parts) >= 3 and len(parts[0]) == 40:
                final = int(parts[2])
                if 1 <= final <= n_lines:
                    commits[final - 1] = parts[0]
                expect_header = False
        elif line.startswith("\t"):
            expect_header = True
    return commits


def blame(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> list[LineAttribution]:
    """Attribute each current line of ``path`` using ``git blame`` and the ``attribution.range``
    records ``rows`` (any repository; those of this file are picked by path and root hash).

    A record applies only to lines that changed after its ``vcs.revision`` (blame names a
    descendant commit, or the line is not committed yet): text the base revision already had is
    not the tool's. Among those lines, the ones whose content matches the range's lines (aligned
    by their hashes, so a range that moved still matches) get the record's contributor; later
    records win. Other lines changed after the first record's revision are ``human`` (written
    outside any instrumented tool); the rest predate what ATS saw: ``unknown``.

    :raises GitError: the file is not inside a git work tree.
    """
    import difflib

    top, rel, root_hash = locate(path)
    lines = (Path(path).read_bytes().decode("utf-8", "replace")).splitlines()
    commits = _blame_commits(top, rel, len(lines))
    hashes = [_line_hash(x) for x in lines]
    mine = sorted((r for r in rows if r.get("file.path") == rel and r.get("vcs.root_hash") == root_hash),
                  key=lambda r: str(r.get("attribution.timestamp", "")))
    ancestry: dict[tuple[str, str], bool] = {}

    def changed_since(revision: str | None, commit: str) -> bool:
        if revision is None or commit == _UNCOMMITTED:
            return True
        if commit == revision:
            return False
        key = (revision, commit)
        if key not in ancestry:
            try:
                _git(top, "merge-base", "--is-ancestor", revision, commit)
                ancestry[key] = True
            except GitError:
                ancestry[key] = False
        return ancestry[key]

    owner: list[Mapping[str, Any] | None] = [None] * len(lines)
    for r in mine:
        revision = r.get("vcs.revision") or None
        eligible = [changed_since(revision, c) for c in commits]
        # Ineligible lines get hashes that match nothing.
        seq = [h if ok else None for h, ok in zip(hashes, eligible)]
        wanted = str(r.get("range.line_hashes", "")).split()
        matcher = difflib.SequenceMatcher(None, wanted, seq, autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.b, block.b + block.size):
                owner[k] = r
    first_revision = (mine[0].get("vcs.revision") or None) if mine else None
    out = []
    for i, text in enumerate(lines):
        commit = None if commits[i] == _UNCOMMITTED else commits[i]
        rec = owner[i]
        if rec is not None:
            model = rec.get("contributor.model_id")
            out.append(LineAttribution(i + 1, text, str(rec.get("contributor.type", "unknown")),
                                       str(model) if model else None, commit, str(rec["attribution.id"])))
        elif mine and changed_since(first_revision, commits[i]):
            out.append(LineAttribution(i + 1, text, "human", None, commit, None))
        else:
            out.append(LineAttribution(i + 1, text, "unknown", None, commit, None))
    return out


def render_blame(lines: Sequence[LineAttribution]) -> str:
    """``ats attribution FILE``: line number, contributor (and model), the line's text."""
    labels = [x.contributor + (f" {x.model_id}" if x.model_id else "") for x in lines]
    num_w = len(str(len(lines))) if lines else 1
    label_w = max((len(label) for label in labels), default=0)
    return "\n".join(f"{x.line:>{num_w}}  {label:<{label_w}}  {x.text}".rstrip()
                     for x, label in zip(lines, labels))
