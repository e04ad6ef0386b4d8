"""Whatever damage a real document takes, ``parse_report`` returns a Report, promptly.

Hypothesis damages the fixture reports (truncation, bit flips, inserted and deleted
bytes, span attribute values, declared charsets, a DOCX's XML inside a sound zip) and
checks that a Report with a valid status comes back within a time bound, for a bounded
number of examples so the suite stays quick. The DOC fixture is left out (LibreOffice
takes a second a document): benchmarks/reliability_benchmark.py runs it, and thousands
more, each in a process of its own.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract import parse_report
from extract.report import Report
from tests.conftest import REPORTS
from tests.fixtures.hostile import CHARSETS, SPAN_VALUES

STATUSES = {"ok", "checks_failed", "partial", "no_tables"}
SECONDS = 20  # a damaged fixture reads in about as long as the fixture: 1 s at most


def _fixtures(*suffixes: str) -> list[tuple[str, bytes]]:
    return [
        (path.name, path.read_bytes())
        for path in sorted(REPORTS.iterdir())
        if path.suffix in suffixes
    ]


MARKUP = _fixtures(".html", ".txt")
DOCX = _fixtures(".docx")
PDF = _fixtures(".pdf")
_SPAN = re.compile(rb"""(colspan|rowspan)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_CHARSET = re.compile(rb"charset\s*=\s*[\"']?[A-Za-z0-9_\-]*", re.I)


@st.composite
def _byte_damage(draw, data: bytes) -> bytes:
    """Truncated, bit-flipped, or with bytes inserted or deleted."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    damaged = bytearray(data)
    if how == "flip":
        for position, bit in draw(
            st.lists(
                st.tuples(st.integers(0, len(data) - 1), st.integers(0, 7)),
                min_size=1,
                max_size=32,
            )
        ):
            damaged[position] ^= 1 << bit
    elif how == "insert":
        position = draw(st.integers(0, len(data)))
        damaged[position:position] = draw(st.binary(min_size=1, max_size=256))
    else:
        start = draw(st.integers(0, len(data) - 1))
        del damaged[start : start + draw(st.integers(1, 4096))]
    return bytes(damaged)


_SPAN_VALUE = st.one_of(st.sampled_from(SPAN_VALUES), st.text(max_size=12))
_CHARSET_LABEL = st.one_of(
    st.sampled_from(CHARSETS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=24),
)


@st.composite
def _damaged_markup(draw) -> tuple[bytes, str | None]:
    _, data = draw(st.sampled_from(MARKUP))
    how = draw(st.sampled_from(["bytes", "span", "charset", "header"]))
    if how == "span" and (found := list(_SPAN.finditer(data))):
        match = draw(st.sampled_from(found))
        value = draw(_SPAN_VALUE).encode("utf-8")
        replaced = match.group(1) + b'="' + value + b'"'
        return data[: match.start()] + replaced + data[match.end() :], None
    if how == "charset" and _CHARSET.search(data):
        label = draw(_CHARSET_LABEL).encode("ascii")
        return _CHARSET.sub(b"charset=" + label, data, count=1), None
    if how == "header":
        return data, f"text/html; charset={draw(_CHARSET_LABEL)}"
    return draw(_byte_damage(data)), None


@st.composite
def _damaged_docx(draw) -> bytes:
    _, data = draw(st.sampled_from(DOCX))
    if draw(st.booleans()):
        return draw(_byte_damage(data))
    # The XML damaged inside a sound zip, so the XML reader meets the damage.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    xml = members["word/document.xml"]
    if draw(st.booleans()):
        value = draw(_SPAN_VALUE).encode("utf-8")
        xml = re.sub(
            rb'(w:gridSpan|w:gridBefore) w:val="[^"]*"',
            lambda m: m.group(1) + b' w:val="' + value + b'"',
            xml,
        )
    else:
        xml = draw(_byte_damage(xml))
    members["word/document.xml"] = xml
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@st.composite
def _damaged_pdf(draw) -> bytes:
    _, data = draw(st.sampled_from(PDF))
    return draw(_byte_damage(data))


def _assert_read(data: bytes, url: str, content_type: str | None = None) -> None:
    started = time.monotonic()
    report = parse_report(data, url=url, content_type=content_type)
    assert time.monotonic() - started < SECONDS
    assert isinstance(report, Report)
    assert report.status in STATUSES
    if report.status == "no_tables":
        assert report.problems  # a report that reads nothing says why


_QUICK = settings(
    deadline=timedelta(seconds=SECONDS),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(_QUICK, max_examples=150)
@given(_damaged_markup())
def test_damaged_html_and_text_read(damaged):
    data, content_type = damaged
    _assert_read(data, "https://example.gov.cn/report.html", content_type)


@settings(_QUICK, max_examples=60)
@given(_damaged_docx())
def test_damaged_docx_read(data):
    _assert_read(data, "https://example.gov.cn/report.docx")


@settings(_QUICK, max_examples=20)
@given(_damaged_pdf())
def test_damaged_pdf_read(data):
    _assert_read(data, "https://example.gov.cn/report.pdf")
