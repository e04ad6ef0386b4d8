"""Binary report documents (PDF, Word, images) to a ``Layout``, for ``parse_report``.

``document_layout`` takes the bytes that ``sniff_format`` called pdf, zip, ole or image
and returns what the HTML/text path needs: the source format (pdf, docx, doc, wps,
image), a ``Layout``, problems, and which tables were read by OCR. A document that cannot
be read at all raises ``DocumentError`` with the reason, which becomes the report's
problem (status no_tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from extract.layout import Layout
from extract.pdf import DocumentError, OcrTable

__all__ = ["DocumentError", "FormatResult", "OcrTable", "document_layout"]


@dataclass
class FormatResult:
    source_format: str
    layout: Layout
    problems: list[str] = field(default_factory=list)
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
    from extract import ocr, office, pdf
    from extract.report import sniff_format

    kind = sniff_format(data, url, content_type)

    if kind == "pdf":
        found = pdf.pdf_layout(data, ocr=ocr.ocr_page if ocr.available() else None)
        result = FormatResult("pdf", found.layout, found.problems)
        if found.ocr_pages:
            result.ocr = True
            result.problems.append(
                "ocr: pages "
                + ", ".join(str(p) for p in found.ocr_pages)
                + " read by OCR (images or undecodable text); their values are marked"
            )
        elif not ocr.available() and any("needs OCR" in p for p in found.problems):
            result.problems.append("ocr: tesseract is not installed")
        return result
    if kind == "zip":
        return FormatResult("docx", office.docx_layout(data))
    if kind == "ole":
        source = ole_kind(url, content_type)
        return FormatResult(source, office.ole_layout(data, source))
    if kind == "image":
        if not ocr.available():
            raise DocumentError("image document: tesseract (OCR) is not installed")
        layout = ocr.image_layout(data)
        return FormatResult(
            "image",
            layout,
            ["ocr: the document is an image, read by OCR; its values are marked"],
            ocr=True,
        )
    raise DocumentError(f"{kind} documents are not read")
