"""OCR of scanned pages and images of tables, with Tesseract (chi_sim)."""

from __future__ import annotations

import shutil

from extract.pdf import OcrTable
from extract.tables import TableReader


def available() -> bool:
    """Whether the tesseract binary and its chi_sim data are installed."""
    return shutil.which("tesseract") is not None


class MarkingReader(TableReader):
    """A ``TableReader`` that records which cells came from OCR tables."""

    def read(self, blocks, is_heading) -> None:
        self.ocr_cells: list[tuple[str, str, str]] = []
        for block in blocks:
            before = {t: set(found) for t, found in self.cells.items()}
            super().read([block], is_heading)
            if isinstance(block, OcrTable):
                for table, found in self.cells.items():
                    self.ocr_cells.extend(
                        (table, *key) for key in found if key not in before[table]
                    )


def ocr_page(image):
    raise NotImplementedError
