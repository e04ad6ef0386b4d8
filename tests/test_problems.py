"""Problems are codes from the catalogue, rendered to text only where people read them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from extract import ocr, parse_report
from extract.dataset.rows import arrow_schema, extract_report, failed_document
from extract.formats import document_layout
from extract.problems import Problem, problem_codes
from tests.fixtures import hostile
from tests.test_dataset import FakeSource

ROOT = Path(__file__).parent.parent
# A code as the packages write it: the first argument of Problem(...).
_MADE = re.compile(r'Problem\(\s*"([a-z_]+)"')


def _codes_made() -> set[str]:
    sources = [*ROOT.glob("extract/**/*.py"), *ROOT.glob("nianbao/**/*.py")]
    return {code for path in sources for code in _MADE.findall(path.read_text())}


def test_every_code_made_is_in_the_catalogue_and_every_catalogued_code_is_made():
    assert _codes_made() == set(problem_codes())


def test_a_code_not_in_the_catalogue_is_refused():
    with pytest.raises(ValueError, match="labels/problems.csv"):
        Problem("table_missing", "applications", "table not found")


def test_the_text_is_the_table_and_the_detail():
    assert str(Problem("table_not_found", "applications", "table not found")) == (
        "applications: table not found"
    )
    assert str(Problem("attachment_missing", None, "attachment not in the archive: u"))


def test_a_report_gives_each_problem_as_text_and_as_code_in_the_same_order():
    report = parse_report(b"<html><body><p>nothing here</p></body></html>")
    assert report.problem_codes == ["table_not_found"] * 3
    assert report.problems == [
        f"{table}: table not found"
        for table in ("active_disclosure", "applications", "reviews_litigation")
    ]
    assert report.metadata()["problem_codes"] == report.problem_codes


def test_the_dataset_keeps_the_codes_beside_the_text():
    schema = arrow_schema("reports")
    assert schema.field("problem_codes").type == schema.field("problems").type
    source = FakeSource(
        "beijing_xicheng",
        "https://www.bjxch.gov.cn/a.html",
        "",
        agency="西城区对外联络服务办公室",
        report_year=2023,
        data=b"<html><body><p>nothing here</p></body></html>",
    )
    missing = Problem("attachment_missing", None, "attachment not in the archive: u")
    _, extracted = extract_report(source, source.read_bytes(), [], [missing])
    reports = extracted.rows["reports"]
    assert reports["problem_codes"] == [
        ["table_not_found"] * 3 + ["attachment_missing"]
    ]
    assert reports["problems"][0][-1] == "attachment not in the archive: u"
    timeout = Problem("timeout", None, "timeout: not extracted within 0 s")
    failed = failed_document(source, "timeout", timeout)
    assert failed.failure == "timeout: not extracted within 0 s"
    assert failed.rows["reports"]["problem_codes"] == [["timeout"]]


def test_a_scanned_pdf_without_tesseract_says_so(monkeypatch):
    # Chosen by the code: the text test for it ("needs OCR") never matched this page.
    monkeypatch.setattr(ocr, "available", lambda: False)
    found = document_layout(hostile.image_pages_pdf(200), None, None)
    assert [p.code for p in found.issues] == [
        "image_page_not_read",
        "ocr_not_installed",
    ]
