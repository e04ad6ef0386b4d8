"""Extraction on a Dask cluster: chunks of documents submitted through ``Client.get_executor()``.

The driver plans and publishes; each task extracts one chunk on a Dask worker and writes
its rows to the staging area under the data location (a prefix on object storage when
the workers are on other machines), returning only the documents' states, as the local
pool does. Inside the task the chunk runs on a one-process ``ExtractionPool``, so every
document keeps its time limit, memory cap and crash isolation: a parser that hangs or
a converter that eats memory ends that document's extraction, not the Dask worker. Each
Dask worker thread keeps its pool's process from one chunk to the next (starting one,
the extractor's imports, costs as much as extracting a chunk); the driver stops them
when the run ends, and they die with their Dask worker.

A task that Dask runs again (its worker died) writes under a fresh attempt name; when
every chunk is done, the files of attempts whose result the driver did not receive are
deleted, so no row is staged twice.

Documents whose kind needs a converter go to workers that declare its resource
(``dask worker … --resources "ocr=1"`` where Tesseract is installed, ``office=1`` where
LibreOffice is), when any worker does; the kind is guessed from the archived URLs and
content types, before any byte is read.

Dask is imported here only, and this module only when ``--scheduler`` is given.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from pathlib import Path

from extract.dataset.pool import ExtractionPool
from extract.dataset.reuse import code_digest
from extract.dataset.rows import Source, guessed_converters
from extract.dataset.staging import Staged, staged_batch
from nianbao_common.limits import Limits
from nianbao_common.storage import RemotePath

# Documents per task: enough to amortise the task's worker process start (the
# extractor's imports), few enough that every worker thread gets work.
CHUNK_SIZE = 128
# The Dask worker resource that marks the workers with each converter.
RESOURCE_OF_CONVERTER = {"tesseract": "ocr", "libreoffice": "office"}
Progress = Callable[[int, int], None]


class ClusterError(ConnectionError):
    """The Dask cluster cannot run this extraction (unreachable, or workers unfit).

    A ConnectionError, so the commands report it as they report storage they cannot
    reach: one line, exit 2, the published dataset untouched.
    """


def resources_needed(source: Source) -> frozenset[str]:
    """The worker resources a document's converters need, guessed from its metadata."""
    return frozenset(
        RESOURCE_OF_CONVERTER[converter]
        for document in (source, *source.attachments)
        for converter in guessed_converters(document)
    )


# This process's pools, by Dask worker thread, with the run each was started for.
_POOLS: dict[int, tuple[tuple[Path | RemotePath, Limits, str], ExtractionPool]] = {}
_POOLS_LOCK = threading.Lock()


def _thread_pool(
    staging: Path | RemotePath, limits: Limits, code: str
) -> ExtractionPool:
    """The calling thread's one-process pool for this run, kept alive between chunks."""
    run = (staging, limits, code)
    thread = threading.get_ident()
    with _POOLS_LOCK:
        kept = _POOLS.pop(thread, None)
    if kept is not None:
        if kept[0] == run:
            pool = kept[1]
        else:
            kept[1].close()
            pool = ExtractionPool(1, staging, limits, code, keep_alive=True)
    else:
        pool = ExtractionPool(1, staging, limits, code, keep_alive=True)
    with _POOLS_LOCK:
        _POOLS[thread] = (run, pool)
    return pool


def close_pools() -> int:
    """Stop this Dask worker's kept extraction processes; returns how many pools."""
    with _POOLS_LOCK:
        kept = list(_POOLS.values())
        _POOLS.clear()
    for _, pool in kept:
        pool.close()
    return len(kept)


def extract_chunk(
    chunk: str,
    sources: Sequence[Source],
    contents: Sequence[str],
    staging: Path | RemotePath,
    limits: Limits,
    code: str,
) -> tuple[str, Staged]:
    """The task: extract a chunk on its thread's pool; returns its attempt and states."""
    attempt = f"{chunk}.{uuid.uuid4().hex[:12]}"
    pool = _thread_pool(staging, limits, code)
    pool.prefix = attempt
    return attempt, pool.run(sources, contents)


def _worker_facts(archived: Source | None, dask_worker=None) -> dict:
    """What the driver checks of each worker before it submits anything.

    ``dask_worker`` is filled in by ``Client.run``.
    """
    facts = {
        "daemon": bool(multiprocessing.current_process().daemon),
        "code": code_digest(),
        "reads_archive": True,
        # Declared with `dask worker --resources`; distributed keeps them in its state.
        "resources": dict(getattr(dask_worker.state, "total_resources", None) or {}),
    }
    if archived is not None:
        try:
            archived.read_bytes()
        except OSError:
            facts["reads_archive"] = False
    return facts


def attempt_of(staged_file: str) -> str:
    """The task attempt that staged a file: its batches are named ``<attempt>-<n>``."""
    return staged_batch(staged_file).split("-", 1)[0]


class ClusterExtraction:
    """Extract documents on the Dask cluster at ``scheduler``; the pool's interface."""

    def __init__(
        self,
        scheduler: str,
        staging: Path | RemotePath,
        limits: Limits,
        code: str,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.scheduler = scheduler
        self.staging = staging
        self.limits = limits
        self.code = code
        self.chunk_size = chunk_size
        self._chunks = 0

    def run(
        self,
        sources: Sequence[Source],
        contents: Sequence[str],
        progress: Progress | None = None,
    ) -> Staged:
        """Extract every source (with its content digest); return the states and counts."""
        staged = Staged([], {})
        if not sources:
            return staged
        try:
            from distributed import Client
        except ImportError as error:
            raise ClusterError(
                '--scheduler needs the cluster extra: pip install -e ".[cluster]"'
            ) from error
        try:
            client = Client(self.scheduler, timeout=30, set_as_default=False)
        except OSError as error:
            raise ClusterError(
                f"no Dask scheduler answers at {self.scheduler}: {error}"
            ) from error
        with client:
            declared = self._check_workers(client, sources[0])
            chunks = self._chunked(sources, sum(client.nthreads().values()))
            missing = {name for needed, _ in chunks for name in needed - declared}
            if missing:
                print(
                    f"extract: no Dask worker declares {', '.join(sorted(missing))}: "
                    "documents that need it go to any worker",
                    file=sys.stderr,
                )
            futures = {}
            executors = {}
            for needed, members in chunks:
                usable = needed & declared
                if usable not in executors:
                    executors[usable] = client.get_executor(
                        resources=dict.fromkeys(usable, 1) or None, pure=False
                    )
                chunk_sources = [sources[i] for i in members]
                chunk_contents = [contents[i] for i in members]
                future = executors[usable].submit(
                    extract_chunk,
                    self._chunk_name(),
                    chunk_sources,
                    chunk_contents,
                    self.staging,
                    self.limits,
                    self.code,
                )
                futures[future] = len(members)
            attempts = set()
            for future in as_completed(futures):
                attempt, result = future.result()
                attempts.add(attempt)
                staged.add(result.states, result.cells)
                if progress:
                    progress(len(staged.states), len(sources))
            # The kept extraction processes are this run's: stopped, they free their
            # memory for whatever the workers run next.
            client.run(close_pools)
        self._drop_other_attempts(attempts)
        return staged

    def _chunk_name(self) -> str:
        self._chunks += 1
        return f"chunk{self._chunks:06d}"

    def _check_workers(self, client, first: Source) -> set[str]:
        """Refuse workers that cannot run the extraction; the resources they declare."""
        client.wait_for_workers(1, timeout=60)
        facts = client.run(_worker_facts, first)
        for address, fact in facts.items():
            if fact["daemon"]:
                raise ClusterError(
                    f"Dask worker {address} cannot start the process that extracts: "
                    "start the workers with DASK_CONFIG=nianbao/dask.yaml, the settings "
                    "the README's cluster commands use"
                )
            if fact["code"] != self.code:
                raise ClusterError(
                    f"Dask worker {address} runs other extractor code "
                    f"({fact['code']}, here {self.code}): install the same nianbao "
                    "on every worker"
                )
            if not fact["reads_archive"]:
                raise ClusterError(
                    f"Dask worker {address} cannot read the raw archive: on disk "
                    "workers read it at the driver's path (run them on this machine "
                    "or over a shared filesystem), on object storage with the AWS_* "
                    "environment the driver has"
                )
        return {name for fact in facts.values() for name in fact["resources"]}

    def _chunked(
        self, sources: Sequence[Source], threads: int
    ) -> list[tuple[frozenset[str], list[int]]]:
        """Indices of the sources in chunks, each of documents needing the same resources."""
        # Small runs are spread over every thread; large ones in chunks of CHUNK_SIZE.
        size = math.ceil(len(sources) / (2 * max(threads, 1)))
        size = max(1, min(self.chunk_size, size))
        groups: dict[frozenset[str], list[int]] = {}
        for index, source in enumerate(sources):
            groups.setdefault(resources_needed(source), []).append(index)
        # Chunks of documents that may need a converter first: PDFs, scans and Word files
        # take several times a page's time, and last they left one worker finishing
        # them while the others had nothing to do.
        order = sorted(groups.items(), key=lambda g: (not g[0], sorted(g[0])))
        return [
            (needed, members[start : start + size])
            for needed, members in order
            for start in range(0, len(members), size)
        ]

    def _drop_other_attempts(self, attempts: set[str]) -> None:
        """Delete staged files of task attempts whose result never reached the driver."""
        staged: list[Path | RemotePath] = list(self.staging.rglob("*.arrow"))
        for path in staged:
            if attempt_of(path.name) not in attempts:
                path.unlink(missing_ok=True)
