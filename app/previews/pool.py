"""A bounded pool of worker processes with a time limit per job.

Processes, not threads, for two reasons measured and reasoned:
- a stuck or too-slow decode must be stopped, and only a process can be killed (a
  thread cannot be interrupted inside Pillow's C code: it would hold a worker slot,
  and its memory, for as long as the hostile image likes);
- Pillow releases the GIL while it decodes and resizes, but not while it parses
  headers, walks frames, converts EXIF or encodes small pieces; in the server's own
  process that Python-level work competes with the event loop for the GIL.
  `python -m bench thumbnails` prints the loop's worst stall.

Each worker slot is a thread in this process that owns one child process: it hands
the child one job at a time over a pipe and waits at most the time limit for the
answer; past it, the child is killed (SIGKILL) and the next job starts a fresh one.
A child that dies by itself (out of memory, a crash in a decoder) fails just its job.

Jobs wait in one queue per account and the slots serve the accounts in turn
(`FairQueue`), so one account's backlog (a batch of 60 phone photos) delays another
account's next thumbnail by at most one job per slot, not by the whole backlog. Work
done ahead of any request (a preview's rendition made right after its upload) waits
in a lane of its own, served only when no other job waits, until someone asks for
it (`promote`).

A child's start (a Python, Pillow and its decoders: ~150 ms of CPU) is paid once, in
the background a moment after the pool starts (`warm_after`), not by the first image
someone waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from app.previews.make import (
    make_poster,
    make_rendition,
    make_thumbnail,
    make_view,
    prepare_worker,
    temp_path_for,
)

# Children are started with "spawn": the server has threads (the blob store's), and
# forking a threaded process can copy a lock held by another thread.
_CONTEXT = multiprocessing.get_context("spawn")

PR_SET_PDEATHSIG = 1
# How long a new child may take to be ready (import Pillow and its decoders).
START_SECONDS = 60.0
# When a server's pool starts its children without waiting for a job: past the
# server's own start (its catalog, its listening socket), before anyone's first image.
WARM_AFTER_SECONDS = 1.0

type Job = Callable[[str, str], bool]
# One job as the slots see it: kind, source, target, and who hears the answer.
type Item = tuple[str, str, str, Callable[[bool], None]]


class FairQueue:
    """Jobs queued per account, handed out one account at a time, in turn.

    An account that was just served goes to the back of the line only when the next
    job is taken, not at once: an account whose job arrives meanwhile is served
    before the backlog's next job (plain rotation would put it behind one more).
    """

    def __init__(self) -> None:
        self._waiting: OrderedDict[str, deque[Item]] = OrderedDict()
        # Jobs nobody waits for yet, first come first served behind every other.
        self._later: deque[Item] = deque()
        self._just_served: list[str] = []
        self._closed = False
        self._ready = threading.Condition()

    @property
    def closed(self) -> bool:
        with self._ready:
            return self._closed

    def put(self, account: str, item: Item, *, later: bool = False) -> None:
        with self._ready:
            if self._closed:
                return
            if later:
                self._later.append(item)
            else:
                self._waiting.setdefault(account, deque()).append(item)
            self._ready.notify()

    def promote(self, target: str, account: str) -> bool:
        """The job for `target` waiting in the later lane now waits in `account`'s
        queue (someone asked for what it makes); False if it is not waiting there."""
        with self._ready:
            for item in self._later:
                if item[2] == target:
                    self._later.remove(item)
                    self._waiting.setdefault(account, deque()).append(item)
                    return True
            return False

    def waiting_now(self) -> int:
        """Jobs waiting outside the later lane."""
        with self._ready:
            return sum(len(jobs) for jobs in self._waiting.values())

    def get(self, timeout: float | None = None) -> Item | None:
        """The next account's next job (a later one when no account has one); None
        once closed, or when `timeout` seconds passed without a job."""
        with self._ready:
            while True:
                if self._closed:
                    return None
                for account in self._just_served:
                    if account in self._waiting:
                        self._waiting.move_to_end(account)
                self._just_served.clear()
                if self._waiting:
                    account, jobs = next(iter(self._waiting.items()))
                    item = jobs.popleft()
                    if not jobs:
                        del self._waiting[account]
                    else:
                        self._just_served.append(account)
                    return item
                if self._later:
                    return self._later.popleft()
                if not self._ready.wait(timeout):
                    return None

    def __len__(self) -> int:
        with self._ready:
            return sum(len(jobs) for jobs in self._waiting.values()) + len(self._later)

    def close(self) -> None:
        """Drop every waiting job (unanswered) and wake every slot to stop."""
        with self._ready:
            self._closed = True
            self._waiting.clear()
            self._later.clear()
            self._ready.notify_all()


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the server dies, even by SIGKILL, even in the
    middle of a decode (a child waiting for a job would see the pipe close anyway)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError, TypeError):
        pass


def _serve(conn: Connection, jobs: dict[str, Job]) -> None:
    """A child's whole life: prepare once, then one job per message until told to stop."""
    _die_with_parent()
    prepare_worker()
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        kind, source, target = message
        try:
            made = bool(jobs[kind](source, target))
        except Exception:
            made = False
        conn.send(made)


class _Slot(threading.Thread):
    def __init__(self, pool: WorkerPool, number: int) -> None:
        super().__init__(name=f"previews-{number}", daemon=True)
        self.pool = pool
        self.child: BaseProcess | None = None
        self.conn: Connection | None = None

    def _start_child(self) -> tuple[BaseProcess, Connection]:
        ours, theirs = _CONTEXT.Pipe()
        child = _CONTEXT.Process(
            target=_serve,
            args=(theirs, self.pool.jobs_by_kind()),
            name="stowage-previews",
            daemon=True,
        )
        child.start()
        theirs.close()
        self.child, self.conn = child, ours
        self.pool.started += 1
        # A child's start (imports, decoders) is not part of any job's time limit.
        if not ours.poll(START_SECONDS):
            raise OSError("a thumbnail worker did not start")
        ours.recv()
        return child, ours

    def _stop_child(self, *, kill: bool) -> None:
        child, conn = self.child, self.conn
        self.child = self.conn = None
        if child is None or conn is None:
            return
        if not kill:
            try:
                conn.send(None)
                child.join(2.0)
            except OSError:
                pass
        if child.is_alive():
            child.kill()
        child.join()
        conn.close()

    def _warm(self) -> None:
        """Start this slot's child before any job needs it."""
        if self.child is not None:
            return
        try:
            self._start_child()
        except (EOFError, OSError):
            # Not ready (or the pool closed meanwhile): the first job starts one.
            self._stop_child(kill=True)

    def run(self) -> None:
        warm_after = self.pool.warm_after
        while True:
            item = self.pool.queue.get(warm_after)
            if item is None and warm_after is not None and not self.pool.queue.closed:
                warm_after = None
                self._warm()
                continue
            if item is None:
                self._stop_child(kill=False)
                return
            kind, source, target, deliver = item
            made = False
            pid = None
            try:
                if self.child is None or not self.child.is_alive():
                    self._stop_child(kill=True)
                    self._start_child()
                # Local names: close() may stop this child from another thread while
                # the job runs; then the closed pipe ends the job (OSError/EOFError).
                conn, child = self.conn, self.child
                assert conn is not None and child is not None
                pid = child.pid
                conn.send((kind, source, target))
                if conn.poll(self.pool.seconds):
                    made = bool(conn.recv())
                else:
                    self.pool.timed_out += 1
                    self._stop_child(kill=True)
            except (EOFError, OSError):
                # The child died under the job (memory limit, a decoder crash).
                self.pool.crashed += 1
                self._stop_child(kill=True)
            if not made and pid is not None:
                # A killed or crashed worker leaves its half-written thumbnail.
                with contextlib.suppress(OSError):
                    os.unlink(temp_path_for(target, pid))
            deliver(made)


class WorkerPool:
    """`workers` child processes; `run(source, target, kind)` gives True when the job
    of that kind (`job` for "image", `poster` for "video", `rendition` for
    "rendition", `view` for "view") made `target` within
    `seconds`, False otherwise (refused, failed, timed out, crashed).

    With `warm_after`, each child is started that many seconds after the pool (when
    no job started it before): late enough not to compete with the server's own start,
    and the pool of a short-lived server (a test's) never starts one for nothing."""

    def __init__(
        self,
        *,
        workers: int,
        seconds: float,
        job: Job = make_thumbnail,
        poster: Job = make_poster,
        rendition: Job = make_rendition,
        view: Job = make_view,
        warm_after: float | None = None,
    ) -> None:
        self.seconds = seconds
        self.job = job
        self.poster = poster
        self.rendition = rendition
        self.view = view
        self.warm_after = warm_after
        self.queue = FairQueue()
        self.started = 0  # children started (a kill or crash starts another)
        self.timed_out = 0
        self.crashed = 0
        self._slots = [_Slot(self, n) for n in range(max(1, workers))]
        for slot in self._slots:
            slot.start()

    def jobs_by_kind(self) -> dict[str, Job]:
        return {
            "image": self.job,
            "video": self.poster,
            "rendition": self.rendition,
            "view": self.view,
        }

    async def run(
        self,
        source: str,
        target: str,
        kind: str = "image",
        *,
        account: str = "",
        later: bool = False,
    ) -> bool:
        """`account`'s job waits in that account's queue (see `FairQueue`); a `later`
        one behind every other job, until `promote`d."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()

        def settle(made: bool) -> None:
            if not answer.done():
                answer.set_result(made)

        def deliver(made: bool) -> None:
            try:
                loop.call_soon_threadsafe(settle, made)
            except RuntimeError:
                pass  # the loop has closed: nobody is waiting

        self.queue.put(account, (kind, source, target, deliver), later=later)
        return await answer

    def promote(self, target: str, account: str) -> bool:
        """A `later` job for `target` is now awaited by someone: it waits in
        `account`'s queue from now on (see `FairQueue.promote`)."""
        return self.queue.promote(target, account)

    def close(self) -> None:
        """Stop every child (jobs still queued go unanswered); blocks briefly."""
        self.queue.close()
        for slot in self._slots:
            # A worker busy with an image is not waited for: it is killed below.
            slot.join(1.0)
            if slot.is_alive():
                slot._stop_child(kill=True)
