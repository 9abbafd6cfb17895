"""Side queries: ATS's own read-only statements on a separate connection, off the app thread.

Plan capture (:mod:`ats.plans`) and capability discovery (:mod:`ats.capabilities`) ask a
database server something.  They never use the program's connection (its transaction, its
session state and its thread belong to the program): a driver plugin describes how to open a
*new* connection with the same parameters (a :data:`Connector`), and one daemon thread runs the
jobs from a bounded queue.  A full queue drops the job and counts it (:func:`stats`); the app
thread never waits.  Everything the worker does runs inside :func:`ats._runtime.suppressed`, so
the side connection and its statements are never recorded as the program's.

Every side statement runs in a ``READ ONLY`` transaction that is rolled back
(:meth:`Session.read_only`): even a server that evaluates part of a statement while planning it
cannot write through ATS.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, NamedTuple, Protocol

from ats.instrumentation import count_error

__all__ = ["Connector", "DbapiSession", "Session", "SideSpec", "SideWorker", "stats", "submit", "wait_idle"]

#: Default bound of the job queue (``plans.queue_size``).
DEFAULT_QUEUE_SIZE: Final = 64


class Session(Protocol):
    """A separate connection opened for side queries (closed after one job)."""

    #: ``postgresql`` or ``mysql``
    dialect: str

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Runs ``sql`` (with ``params`` as the driver takes them) and returns every row."""

    def close(self) -> None: ...


#: Opens a new :class:`Session` with the parameters of the program's connection.
Connector = Callable[[], Session]


class SideSpec(NamedTuple):
    """How a driver plugin lets ATS query the server of a wrapped call (``CallSpec.side``)."""

    #: ``(self) -> Connector`` for the wrapped object (cursor or connection); read on the app
    #: thread (parameters only: no I/O), called on the worker.
    connector: Callable[[Any], Connector]
    #: ``(args, kwargs) -> the statement's parameters`` as the wrapped method received them.
    params: Callable[[tuple[Any, ...], dict[str, Any]], Any]


class DbapiSession:
    """A :class:`Session` over a DB-API connection in autocommit mode (psycopg, psycopg2, PyMySQL)."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description is not None else []
        finally:
            cur.close()

    def close(self) -> None:
        self.conn.close()


@contextmanager
def read_only(session: Session) -> Iterator[None]:
    """A ``READ ONLY`` transaction on ``session``, always rolled back."""
    begin = "START TRANSACTION READ ONLY" if session.dialect == "mysql" else "BEGIN READ ONLY"
    session.query(begin)
    try:
        yield
    finally:
        session.query("ROLLBACK")


Job = Callable[[], None]


class SideWorker:
    """One daemon thread running jobs from a bounded queue; drops counted, never blocks the caller."""

    def __init__(self, maxsize: int = DEFAULT_QUEUE_SIZE) -> None:
        self._lock = threading.Lock()
        self._maxsize = maxsize
        self._queue: queue.Queue[Job] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.submitted = 0
        self.dropped = 0
        self.failed = 0

    def resize(self, maxsize: int) -> None:
        """The queue bound; effective only before the first job (a restart applies a change)."""
        with self._lock:
            if self._thread is None and self._queue.empty():
                self._maxsize = maxsize
                self._queue = queue.Queue(maxsize)

    def submit(self, job: Job) -> bool:
        """Queues ``job``; False (and one more drop) when the queue is full."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's thread does not exist here
                self._pid = os.getpid()
                self._queue = queue.Queue(self._maxsize)
                self._thread = None
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.dropped += 1
                return False
            self.submitted += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="ats-side", daemon=True)
                self._thread.start()
            return True

    def _run(self, jobs: queue.Queue[Job]) -> None:
        from ats._runtime import suppressed

        while True:
            job = jobs.get()
            try:
                with suppressed():
                    job()
            except Exception as exc:
                self.failed += 1
                count_error("side.job", exc)
            finally:
                jobs.task_done()

    def wait_idle(self, timeout: float) -> bool:
        """Waits until every queued job ran (for tests and shutdown); False on timeout."""
        done = threading.Event()

        def join() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)


_WORKER: Final = SideWorker()


def submit(job: Job) -> bool:
    """Queues ``job`` on the process's side worker (False: dropped, counted)."""
    return _WORKER.submit(job)


def resize(maxsize: int) -> None:
    _WORKER.resize(maxsize)


def wait_idle(timeout: float = 10.0) -> bool:
    """Waits until every queued side job ran; False on timeout."""
    return _WORKER.wait_idle(timeout)


def stats() -> dict[str, int]:
    """``submitted``, ``dropped`` (queue full) and ``failed`` (job raised) side jobs in this process."""
    return {"submitted": _WORKER.submitted, "dropped": _WORKER.dropped, "failed": _WORKER.failed}


def first_column(rows: Sequence[tuple[Any, ...]]) -> Any:
    """The first column of the first row (``None`` for no rows)."""
    return rows[0][0] if rows and rows[0] else None
