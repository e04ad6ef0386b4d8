"""Binary report documents (PDF, Word, images) to a ``Layout``, for ``parse_report``.

``document_layout`` takes the bytes that ``sniff_format`` called pdf, zip, ole or image
and returns what the HTML/text path needs: the source format (pdf, docx, doc, wps,
image), a ``Layout``, problems, and which tables were read by OCR. A document that cannot
be read at all raises ``DocumentError`` with the reason, which becomes the report's
problem (status no_tables).

This is the boundary where the libraries' failures on damaged files become reasons:
whatever pdfminer, PDFium, zipfile, zlib, lxml or Pillow raise is a ``DocumentError``
naming the exception, while an error raised by this package's own code is a bug and goes
on up. The external tools (LibreOffice, Tesseract) run through ``run_tool``: in a process
group of their own, which is killed whole when they overrun.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from extract.layout import Layout
from extract.pdf import DocumentError, OcrTable, describe, raised_by_library
from extract.problems import Problem

__all__ = ["DocumentError", "FormatResult", "OcrTable", "document_layout", "run_tool"]


@dataclass
class FormatResult:
    source_format: str
    layout: Layout
    issues: list[Problem] = field(default_factory=list)
    ocr: bool = False


_WPS_URL = re.compile(r"\.wps(?:$|[?#])", re.IGNORECASE)


def ole_kind(url: str | None, content_type: str | None) -> str:
    """doc or wps, for an OLE compound file (both are Word binary documents)."""
    if (url and _WPS_URL.search(url)) or (
        content_type
        and ("wps" in content_type.lower() or "kingsoft" in content_type.lower())
    ):
        return "wps"
    return "doc"


def named_format(kind: str, url: str | None, content_type: str | None) -> str:
    """The source format a sniffed kind is read as: pdf, docx, doc, wps or image."""
    if kind == "zip":
        return "docx"
    if kind == "ole":
        return ole_kind(url, content_type)
    return kind


def document_layout(
    data: bytes, url: str | None, content_type: str | None
) -> FormatResult:
    """Lay out a pdf, zip (DOCX), ole (DOC/WPS) or image document."""
    try:
        return _document_layout(data, url, content_type)
    except DocumentError:
        raise
    except Exception as error:
        if not raised_by_library(error):
            raise
        raise DocumentError(describe(error)) from error


def _document_layout(
    data: bytes, url: str | None, content_type: str | None
) -> FormatResult:
    from extract import ocr, office, pdf
    from extract.report import sniff_format

    kind = sniff_format(data, url, content_type)

    if kind == "pdf":
        found = pdf.pdf_layout(data, ocr=ocr.ocr_page if ocr.available() else None)
        result = FormatResult("pdf", found.layout, found.issues)
        if found.ocr_pages:
            result.ocr = True
            result.issues.append(
                Problem(
                    "read_by_ocr",
                    None,
                    "ocr: pages "
                    + ", ".join(str(p) for p in found.ocr_pages)
                    + " read by OCR (images or undecodable text); their values are "
                    "marked",
                )
            )
        elif any(p.code == "image_page_not_read" for p in found.issues):
            # The pdf reader was given no OCR: Tesseract is not installed.
            result.issues.append(
                Problem("ocr_not_installed", None, "ocr: tesseract is not installed")
            )
        return result
    if kind == "zip":
        return FormatResult("docx", office.docx_layout(data))
    if kind == "ole":
        source = ole_kind(url, content_type)
        return FormatResult(source, office.ole_layout(data, source))
    if kind == "image":
        if not ocr.available():
            raise DocumentError("image document: tesseract (OCR) is not installed")
        layout, notes = ocr.image_layout(data)
        return FormatResult(
            "image",
            layout,
            [
                Problem(
                    "read_by_ocr",
                    None,
                    "ocr: the document is an image, read by OCR; its values are marked",
                ),
                *(Problem("ocr_page_note", None, note) for note in notes),
            ],
            ocr=True,
        )
    raise DocumentError(f"{kind} documents are not read")


def run_tool(
    command: list[str],
    timeout: float,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run an external tool with a time limit; ``subprocess.TimeoutExpired`` past it.

    The tool runs in a session of its own, and however this call ends (done, timed out,
    or interrupted), every process left in that group is killed and gone before it
    returns: LibreOffice's launcher starts soffice.bin as a child, which killing the
    launcher alone (what ``subprocess.run`` does) leaves running, with its files open.
    """
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(stdin, timeout=timeout)
        finally:
            _kill_group(process)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill every process of the tool's group and wait until none is left alive."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Children of the tool are not ours to wait for: they are gone once /proc shows
    # none of the group still running (a zombie is dead; its parent, or init, reaps it).
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_alive(group: int) -> bool:
    """Whether any process of the group is alive (not a zombie), as /proc shows."""
    processes = Path("/proc")
    if not processes.is_dir():  # not Linux: nothing to wait for
        return False
    for entry in processes.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # pid (comm) state ppid pgrp …: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False
