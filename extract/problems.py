"""What a reading could not do, as a ``Problem``: a code from the catalogue, a table, a detail.

Every reader (the format readers, the table reader, the report, the dataset) records
problems as ``Problem`` values, and code that acts on a problem compares its ``code``.
They become text only where people read them: ``Report.problems``, the dataset's
``problems`` column, the terminal and the run records. The text is the one researchers
have always read: the table, then the detail (``applications: table not found``).

The codes are data: extract/labels/problems.csv lists each with the stage that records it
(document, table, pdf, ocr, dataset) and what it means; docs/schema.md prints the list and
the dataset's ``problem_codes`` column holds them. A code not in the catalogue is refused
where the problem is made, so a new kind of problem is documented before it is recorded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class ProblemCode:
    """One line of the catalogue: a code, the stage that records it, what it means."""

    code: str
    stage: str
    description: str


@cache
def problem_codes() -> dict[str, ProblemCode]:
    """The catalogue, code → its line, in the order docs/schema.md lists them."""
    text = (resources.files("extract") / "labels" / "problems.csv").read_text("utf-8")
    lines = csv.DictReader(text.splitlines())
    return {line["code"]: ProblemCode(**line) for line in lines}


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: its ``code``, the template table it concerns (or None for the whole
    document) and the ``detail`` people read, without the table.

    >>> str(Problem("table_not_found", "applications", "table not found"))
    'applications: table not found'
    >>> str(Problem("page_unreadable", None, "pdf: page 2: tesseract failed"))
    'pdf: page 2: tesseract failed'
    """

    code: str
    table: str | None
    detail: str

    def __post_init__(self) -> None:
        if self.code not in problem_codes():
            raise ValueError(
                f"problem code {self.code!r} is not in labels/problems.csv"
            )

    def __str__(self) -> str:
        return f"{self.table}: {self.detail}" if self.table else self.detail


def texts(problems: Iterable[Problem]) -> list[str]:
    """The problems as the text people read, one string each."""
    return [str(problem) for problem in problems]


def codes(problems: Iterable[Problem]) -> list[str]:
    """The problems' codes, in the same order as ``texts``."""
    return [problem.code for problem in problems]
