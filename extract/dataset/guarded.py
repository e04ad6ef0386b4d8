"""Extracting one archived document under a time limit: every failure becomes its status.

A document that cannot be read from the archive, that makes a library raise, that runs
past its time limit (an alarm, scaled by the pages a converter may have to read) or that
needs more memory than the worker may take becomes a report with status ``error``,
``timeout`` or ``too_large`` and a problem that names the cause; nothing raises out of
``extract_guarded``. The hard deadline for a parser stuck in C code, where no alarm is
heard, is the pool's (extract/dataset/pool.py).
"""

from __future__ import annotations

import contextlib
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from extract.dataset.reuse import CONVERTERS_OF_KIND, reuse_key
from extract.dataset.rows import (
    Extracted,
    Source,
    document_kinds,
    extract_report,
    failed_document,
    read_documents,
)
from extract.problems import Problem
from nianbao_common.limits import Limits

_PDF_PAGE = re.compile(rb"/Type\s*/Page(?!s)")


class DocumentTimeout(BaseException):  # noqa: N818 - read as a status, like MemoryError
    """Raised by the alarm; a BaseException, so parsers' ``except Exception`` let it pass."""


def _page_estimate(page: bytes, files: Sequence[tuple[bytes, Any, Any]]) -> int:
    # A cheap count, capped: enough to scale a time limit, never trusted for content.
    pages = 0
    for data in (page, *(f[0] for f in files)):
        if data[:5] == b"%PDF-":
            pages += min(len(_PDF_PAGE.findall(data)), 500)
        elif (
            data[:4] in (b"\x89PNG", b"II*\x00", b"MM\x00*")
            or data[:3] == b"\xff\xd8\xff"
        ):
            pages += 1
    return pages


def extract_guarded(
    source: Source, limits: Limits, started: Callable[[float], None] | None = None
) -> Extracted:
    """Extract one document; any failure becomes its recorded status, never an exception.

    ``started`` is told the document's time limit once its bytes are read.
    """
    try:
        page, files, problems = read_documents(source)
    except MemoryError:
        return failed_document(
            source,
            "too_large",
            Problem(
                "too_large",
                None,
                f"too_large: the archive record needed more than "
                f"{limits.memory_bytes >> 20} MiB",
            ),
        )
    except Exception as error:  # noqa: BLE001 - an unreadable record is a status
        return failed_document(
            source,
            "error",
            Problem(
                "archive_record_unreadable",
                None,
                f"archive record unreadable: {_describe(error)}",
            ),
        )
    kinds = document_kinds(page, source, files)
    converters = dict(reuse_key(kinds).converters)
    seconds = limits.seconds_for(
        _page_estimate(page, files) if kinds & set(CONVERTERS_OF_KIND) else 0
    )
    if started:
        started(seconds)
    try:
        with _alarm(seconds):
            _, result = extract_report(source, page, files, problems)
    except DocumentTimeout:
        result = failed_document(
            source,
            "timeout",
            Problem("timeout", None, f"timeout: not extracted within {seconds:.0f} s"),
        )
    except MemoryError:
        result = failed_document(
            source,
            "too_large",
            Problem(
                "too_large",
                None,
                f"too_large: needed more than {limits.memory_bytes >> 20} MiB",
            ),
        )
    except Exception as error:  # noqa: BLE001 - isolation: one document, one status
        result = failed_document(
            source,
            "error",
            Problem("extraction_error", None, f"error: {_describe(error)}"),
        )
    result.converters = converters
    return result


def _describe(error: BaseException) -> str:
    message = str(error).splitlines()[0][:300] if str(error) else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise DocumentTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
