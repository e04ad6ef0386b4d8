"""Binary report documents (PDF, Word, images) to a ``Layout``, for ``parse_report``.

``document_layout`` takes the bytes that ``sniff_format`` called pdf, zip, ole or image
and returns what the HTML/text path needs: the source format (pdf, docx, doc, wps,
image), a ``Layout``, problems, and which tables were read by OCR. A document that cannot
be read at all raises ``DocumentError`` with the reason, which becomes the report's
problem (status no_tables).

This is the boundary where the libraries' failures on damaged files become reasons:
whatever pdfminer, PDFium, zipfile, zlib, lxml or Pillow raise is a ``DocumentError``
naming the exception, while an error raised by this package's own code is a bug and goes
on up (the readers raise and judge them with ``extract.errors``). The external tools
(LibreOffice, Tesseract) run through ``extract.tools.run_tool``: in a process group of
their own, which is killed whole when they overrun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from extract import ocr, office, pdf
from extract.errors import DocumentError, describe, raised_by_library
from extract.layout import Layout
from extract.problems import Problem

__all__ = ["FormatResult", "document_layout", "named_format", "sniff_format"]

_MAGIC = (
    (b"%PDF-", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"\xd0\xcf\x11\xe0", "ole"),
    (b"\x89PNG", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
)
_HTML_HINT = re.compile(r"<(?:html|body|table|p|div|br|span|td)\b", re.IGNORECASE)


@dataclass
class FormatResult:
    source_format: str
    layout: Layout
    issues: list[Problem] = field(default_factory=list)
    ocr: bool = False


_WPS_URL = re.compile(r"\.wps(?:$|[?#])", re.IGNORECASE)


def sniff_format(
    data: bytes, url: str | None = None, content_type: str | None = None
) -> str:
    """html, text, or the binary kind a later reader handles (pdf, zip, ole, image, binary)."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    head = data[:4096]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary"
    if content_type and "html" in content_type.lower():
        return "html"
    return "html" if _HTML_HINT.search(head.decode("latin-1")) else "text"


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
        layout, problems = ocr.image_layout(data)
        return FormatResult(
            "image",
            layout,
            [
                Problem(
                    "read_by_ocr",
                    None,
                    "ocr: the document is an image, read by OCR; its values are marked",
                ),
                *problems,
            ],
            ocr=True,
        )
    raise DocumentError(f"{kind} documents are not read")
