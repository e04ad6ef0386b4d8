"""A report page whose tables live in an attached document (PDF, Word, image).

Many agencies publish a short page that only links the report, or prints the narrative
and leaves the tables to the attachment. ``parse_report_with_attachments`` reads the page
and, when it holds no table, the attachments, and returns one report whose source is the
attachment that reads best; ``page_url`` and ``source_url`` keep both linked.
"""

from __future__ import annotations

from extract.problems import Problem
from extract.report import Report, parse_report

_RANK = {"ok": 0, "checks_failed": 1, "partial": 2, "no_tables": 3}


def _cells(report: Report) -> int:
    return sum(len(columns["row"]) for columns in report.table_columns.values())


def parse_report_with_attachments(
    page_bytes: bytes,
    page_url: str | None,
    page_content_type: str | None,
    attachments: list[tuple[bytes, str | None, str | None]],
) -> Report:
    """The page's report, or its best attachment's when the page has no table.

    Attachments are (bytes, url, content type). The chosen attachment's report keeps its
    own cells, format and sha256; metadata it lacks (title, agency, year, publish date,
    sections) comes from the page. ``source_url`` is the document the values come from,
    ``page_url`` the page.
    """
    page = parse_report(page_bytes, page_url, page_content_type)
    page.page_url = page_url
    page.source_url = page_url
    if page.status != "no_tables" or not attachments:
        return page
    best: Report | None = None
    for data, url, content_type in attachments:
        candidate = parse_report(data, url, content_type)
        if best is None or (_RANK.get(candidate.status, 9), -_cells(candidate)) < (
            _RANK.get(best.status, 9),
            -_cells(best),
        ):
            best = candidate
    if best is None or best.status == "no_tables":
        page.issues.append(
            Problem(
                "no_tables_in_attachments",
                None,
                f"no tables in the page nor in its {len(attachments)} attachment(s)",
            )
        )
        return page
    best.page_url = page_url
    best.source_url = best.url
    for name in ("title", "agency", "year", "publish_date"):
        if getattr(best, name) is None and getattr(page, name) is not None:
            setattr(best, name, getattr(page, name))
    for code, text in page.sections.items():
        if not best.sections.get(code, "").strip():
            best.sections[code] = text
    return best
