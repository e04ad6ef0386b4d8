"""Worker processes that extract archived documents, each under a time limit and a memory cap.

Every document finishes. A worker arms an alarm for each document, so a parser caught in a
loop stops with status ``timeout``; the worker runs with an address-space limit, so an
allocation past it fails with status ``too_large`` instead of taking the machine. When a
worker does not come back from a document (a loop inside C code, a crash, the kernel's
OOM killer), the driver kills it at the hard deadline or sees it die, records that one
document, starts a new worker and hands the rest of the batch to it. Workers die with the
driver (PR_SET_PDEATHSIG), so a killed run leaves none behind.

Workers stage the rows of each batch themselves (extract/dataset/staging.py) and send
back only each document's state: the driver never holds the cells.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from extract.dataset.plan import share_descriptions
from extract.dataset.rows import Source, failed_document, guessed_converters
from extract.dataset.staging import Staged, extract_batch, state_of, write_staged
from extract.problems import Problem
from nianbao_common.limits import Limits
from nianbao_common.storage import RemotePath

# Documents per task, at most: each task writes one staged file per table and year, which
# the driver reads back one by one, so large runs take large batches (256 documents
# staged their rows in 0.25 ms each, 128 in 0.30 to 0.37 ms); small runs take smaller
# ones, so that every worker gets some (about four tasks a worker).
BATCH_SIZE = 256
# Expected parsing seconds of a document: a page, and per byte of what may need a
# converter (a PDF or image may be a scan for Tesseract, at about 2 s a 200 KB page;
# Word and WPS files go through LibreOffice). Below IN_PROCESS_BELOW_SECONDS of them a
# run is extracted in the driver's own process: starting workers (each imports the
# extractor) costs more than they save. benchmarks/startup_benchmark.py measures the
# pool's start-up and prints the break-even point.
PAGE_SECONDS = 0.012
CONVERTED_SECONDS_PER_BYTE = 10e-6
IN_PROCESS_BELOW_SECONDS = 2.0


# -- the worker process ---------------------------------------------------------------


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the driver died before prctl took effect
        os._exit(1)


def _cap_memory(limit: int) -> None:
    if limit > 0:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _exit_on_terminate(signum, frame) -> None:
    # SystemExit unwinds the parse: every finally (a converter's process group) runs.
    raise SystemExit(128 + signum)


class DocumentSlot:
    """The document a worker is on and the time it must be done by, in memory that the
    worker and the driver share.

    The worker writes it as each document starts, where a message a document cost the
    driver a wake-up each (2 s of CPU in a run of 20,000 reports, taken from the workers
    on a busy machine); the driver reads it when a deadline passes or a worker dies.
    The worker writes the deadline before the index: a driver that reads the new index
    also reads its deadline, or a later one.
    """

    NONE = -1.0

    def __init__(self, context: Any) -> None:
        self._values = context.RawArray(ctypes.c_double, [self.NONE, math.inf])

    def start(self, index: int, deadline: float) -> None:
        """Document ``index`` of the task runs until ``deadline`` (time.monotonic)."""
        self._values[1] = deadline
        self._values[0] = index

    def clear(self, deadline: float = math.inf) -> None:
        """No document runs; the worker owes an answer by ``deadline``."""
        self._values[0] = self.NONE
        self._values[1] = deadline

    @property
    def running(self) -> int | None:
        """The index in its task of the document the worker is on, if any."""
        index = self._values[0]
        return None if index == self.NONE else int(index)

    @property
    def deadline(self) -> float:
        return self._values[1]

    def overdue(self, now: float) -> bool:
        """Past its deadline on one and the same document (not one just finished)."""
        index = self._values[0]
        return now >= self._values[1] and self._values[0] == index


def _worker(
    connection: Connection,
    limits: Limits,
    staging: Path | RemotePath,
    slot: DocumentSlot,
) -> None:
    _die_with_parent()
    # The driver's Ctrl-C reaches the whole process group; the driver alone decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_terminate)
    _cap_memory(limits.memory_bytes)
    # The extractor's modules live as long as the worker: kept out of the collector's
    # full passes, which otherwise walk them again each time a batch's rows pile up.
    gc.freeze()
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        name, sources, contents, code = task

        def started(index: int, seconds: float) -> None:
            # The worker's own alarm stops the document at its limit; the deadline
            # catches a worker that cannot raise (a loop inside C code).
            slot.start(index, time.monotonic() + seconds + limits.grace_seconds)

        try:
            staged = extract_batch(
                name, sources, contents, code, limits, staging, started
            )
        except MemoryError:
            # Rows too large to write as one batch: send them one document at a time.
            connection.send(("split", None))
            continue
        except OSError as error:
            # A full disk is the run's problem, not a document's: the driver stops.
            connection.send(("storage", error))
            continue
        connection.send(("done", staged))


# -- the driver -------------------------------------------------------------------------


@dataclass
class _Task:
    name: str
    sources: list[Source]
    contents: list[str]


@dataclass
class _Worker:
    process: Any
    connection: Connection
    slot: DocumentSlot
    task: _Task | None = None


Progress = Callable[[int, int], None]


class ExtractionPool:
    """Extract documents on worker processes; each document ends with a recorded state.

    Staged files are named ``<prefix>-<batch number>``: the prefix tells apart the pools
    that write into one staging area at once (the cluster runs one per Dask worker
    thread, and names each task's attempt with it). With ``keep_alive`` the worker
    processes outlive ``run`` for the next one, until ``close``.
    """

    def __init__(
        self,
        workers: int,
        staging: Path | RemotePath,
        limits: Limits,
        code: str,
        prefix: str | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.workers = max(1, workers)
        self.keep_alive = keep_alive
        self._idle: list[_Worker] = []
        self.staging = staging
        self.limits = limits
        self.code = code
        self.prefix = prefix or f"batch-{os.getpid()}"
        self._context = multiprocessing.get_context("spawn")
        self._batches = 0
        self._failed_starts = 0
        self._shared: dict[str, dict] = {}

    def run(
        self,
        sources: Sequence[Source],
        contents: Sequence[str],
        progress: Progress | None = None,
    ) -> Staged:
        """Extract every source (with its content digest); return the states and counts."""
        total = len(sources)
        staged = Staged([], {})
        if not total:
            return staged
        queue: deque[_Task] = deque()
        # About four batches a worker balance the load; one worker has none to balance.
        share = 4 * self.workers if self.workers > 1 else 1
        size = max(1, min(BATCH_SIZE, math.ceil(total / share)))
        for start in range(0, total, size):
            queue.append(
                self._task(
                    sources[start : start + size], contents[start : start + size]
                )
            )
        workers = self._workers(min(self.workers, len(queue)))
        finished = False
        try:
            while queue or any(w.task for w in workers):
                for worker in workers:
                    if worker.task is None and queue:
                        worker.task = queue.popleft()
                        # Until its first document starts, a worker may take a
                        # document's time to start (imports) before it counts as hung.
                        worker.slot.clear(time.monotonic() + self._patience())
                        worker.connection.send(
                            (
                                worker.task.name,
                                worker.task.sources,
                                worker.task.contents,
                                self.code,
                            )
                        )
                self._step(workers, queue, staged, total, progress)
            finished = True
        finally:
            if finished and self.keep_alive:
                self._idle = workers
            else:
                for worker in workers:
                    self._stop(worker)
        return staged

    def close(self) -> None:
        """Stop the worker processes kept alive between runs."""
        idle, self._idle = self._idle, []
        for worker in idle:
            self._stop(worker)

    def _workers(self, count: int) -> list[_Worker]:
        """``count`` workers: the live ones of the last run first, then new ones."""
        live = [worker for worker in self._idle if worker.process.is_alive()]
        for worker in self._idle:
            if worker not in live[:count]:
                self._stop(worker, kill=not worker.process.is_alive())
        self._idle = []
        workers = live[:count]
        return workers + [self._start() for _ in range(count - len(workers))]

    def _patience(self) -> float:
        return self.limits.document_seconds + self.limits.grace_seconds

    def _task(self, sources: Sequence[Source], contents: Sequence[str]) -> _Task:
        self._batches += 1
        return _Task(
            f"{self.prefix}-{self._batches:06d}", list(sources), list(contents)
        )

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        slot = DocumentSlot(self._context)
        process = self._context.Process(
            target=_worker,
            args=(child, self.limits, self.staging, slot),
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent, slot)

    def _stop(self, worker: _Worker, kill: bool = False) -> None:
        if kill or worker.task is not None:
            # SIGTERM first: it raises in the worker, whose converters (LibreOffice,
            # Tesseract, in sessions of their own) are then killed by their cleanup;
            # SIGKILL only for a worker that cannot raise.
            worker.process.terminate()
            worker.process.join(timeout=self.limits.grace_seconds)
            if worker.process.is_alive():
                worker.process.kill()
        else:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        worker.process.join(timeout=10)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()

    def _step(
        self,
        workers: list[_Worker],
        queue: deque[_Task],
        staged: Staged,
        total: int,
        progress: Progress | None,
    ) -> None:
        busy = [w for w in workers if w.task is not None]
        now = time.monotonic()
        # A worker moves its deadline on as documents start: woken at an old one, the
        # loop finds the new one and waits again.
        timeout = max(0.0, min((w.slot.deadline for w in busy), default=math.inf) - now)
        waitables = [w.connection for w in busy] + [w.process.sentinel for w in busy]
        ready = wait(waitables, timeout=None if math.isinf(timeout) else timeout)
        for index, worker in enumerate(workers):
            if worker.task is None:
                continue
            if worker.connection in ready:
                try:
                    message, value = worker.connection.recv()
                except (EOFError, OSError):
                    message, value = "died", None
            elif worker.process.sentinel in ready:
                message, value = "died", None
            elif worker.slot.overdue(time.monotonic()):
                message, value = "overdue", None
            else:
                continue
            if message == "done":
                staged.add(
                    (share_descriptions(state, self._shared) for state in value.states),
                    value.cells,
                )
                worker.task = None
                worker.slot.clear()
                if progress:
                    progress(len(staged.states), total)
            elif message == "storage":
                raise value
            elif message == "split":
                for position, source in enumerate(worker.task.sources):
                    queue.append(self._task([source], [worker.task.contents[position]]))
                worker.task = None
                worker.slot.clear()
            else:
                workers[index] = self._replace(worker, message, queue, staged)
                if progress:
                    progress(len(staged.states), total)

    def _replace(
        self, worker: _Worker, how: str, queue: deque[_Task], staged: Staged
    ) -> _Worker:
        """Record the document a worker did not come back from; requeue the rest."""
        self._stop(worker, kill=True)
        task, running = worker.task, worker.slot.running
        assert task is not None
        code = worker.process.exitcode
        if running is None:
            # It never started a document: the worker failed, not a document.
            self._failed_starts += 1
            if self._failed_starts > 3:
                raise RuntimeError(
                    f"extraction workers cannot start (exit code {code}); run "
                    "`python -c 'import extract.dataset.pool'` to see why"
                )
            queue.appendleft(task)
            return self._start()
        self._failed_starts = 0
        source = task.sources[running]
        if how == "overdue":
            status, problem = (
                "timeout",
                Problem(
                    "timeout", None, "timeout: the worker did not return and was killed"
                ),
            )
        elif code == -signal.SIGKILL:
            status, problem = (
                "too_large",
                Problem(
                    "too_large",
                    None,
                    "too_large: the worker was killed (out of memory)",
                ),
            )
        else:
            status, problem = (
                "error",
                Problem(
                    "worker_died", None, f"error: the worker died (exit code {code})"
                ),
            )
        result = failed_document(source, status, problem)
        written = write_staged(self.staging, f"{task.name}-failed", [result])
        staged.add([state_of(result, task.contents[running], self.code)], written)
        rest = [i for i in range(len(task.sources)) if i != running]
        if rest:
            queue.appendleft(
                self._task(
                    [task.sources[i] for i in rest], [task.contents[i] for i in rest]
                )
            )
        return self._start()


class InProcessExtraction:
    """Extract in this process, for runs too small to pay for starting workers.

    Each document keeps its time limit (the alarm) and, while it is extracted, a cap on
    this process's address space: a document past either gets its status as in a worker.
    What only a worker process gives is the hard deadline: a loop inside C code that
    never returns to Python would hold the run, which is why only small runs come here.
    """

    def __init__(self, staging: Path | RemotePath, limits: Limits, code: str) -> None:
        self.staging = staging
        self.limits = limits
        self.code = code
        self._batches = 0

    def run(
        self,
        sources: Sequence[Source],
        contents: Sequence[str],
        progress: Progress | None = None,
    ) -> Staged:
        """Extract every source (with its content digest); return the states and counts."""
        staged = Staged([], {})
        with _address_space_cap(self.limits.memory_bytes):
            for start in range(0, len(sources), BATCH_SIZE):
                self._batches += 1
                batch = extract_batch(
                    f"local-{os.getpid()}-{self._batches:06d}",
                    sources[start : start + BATCH_SIZE],
                    contents[start : start + BATCH_SIZE],
                    self.code,
                    self.limits,
                    self.staging,
                )
                staged.add(batch.states, batch.cells)
                if progress:
                    progress(len(staged.states), len(sources))
        return staged


def expected_seconds(sources: Sequence[Source]) -> float:
    """The parsing time a run of these documents is expected to take, by their kinds."""
    total = 0.0
    for source in sources:
        total += PAGE_SECONDS
        for document in (source, *source.attachments):
            if guessed_converters(document):
                total += document.length * CONVERTED_SECONDS_PER_BYTE
    return total


def in_process_fits(sources: Sequence[Source]) -> bool:
    """Whether extracting here costs less than starting workers (and the alarm works)."""
    return (
        threading.current_thread() is threading.main_thread()
        and expected_seconds(sources) < IN_PROCESS_BELOW_SECONDS
    )


@contextlib.contextmanager
def _address_space_cap(limit: int) -> Iterator[None]:
    # Room for one document on top of what this process already maps.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _mapped_bytes() + limit
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _mapped_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0
