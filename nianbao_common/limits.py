"""How much an extraction may take: per-document limits, and the dataset versions kept.

The command line shows these defaults in its help without loading pandas or the parsers.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_KEEP = 7  # dataset versions kept for --rollback


@dataclass(frozen=True)
class Limits:
    """How long and how much memory one document may take."""

    document_seconds: float = 120.0
    # Scanned pages are read by OCR at several seconds a page: a PDF's limit grows with
    # its page count, so a long scan is not cut off while a crafted one still is.
    ocr_page_seconds: float = 15.0
    memory_bytes: int = 4 << 30
    # How long past a document's limit the driver waits before it kills the worker
    # (the alarm inside the worker should have stopped it by then).
    grace_seconds: float = 15.0

    def seconds_for(self, pages: int) -> float:
        """The time limit of a document with this many PDF or image pages."""
        return self.document_seconds + self.ocr_page_seconds * pages
