"""The archive writer and reader without Scrapy: versions, rotation, recovery."""

from __future__ import annotations

import hashlib
import sqlite3

from crawler.archive.manifest import utc_now
from crawler.archive.reader import iter_latest_reports, verify_archive
from crawler.archive.record import RECORD_FIELDS, Fetched, RunCounts
from crawler.archive.writer import ArchiveWriter
from crawler.paths import raw_dir
from crawler.registry import ad_hoc_site
from nianbao_common.paths import data_dir


def _write(writer, url, body, kind="report", **fields):
    return writer.write(
        Fetched(
            kind=kind,
            url=url,
            final_url=url,
            status=200,
            headers=[
                (b"Content-Type", b"text/html; charset=utf-8"),
                (b"Content-Encoding", b"gzip"),
            ],
            body=body,
            fetched_at=utc_now(),
            **fields,
        )
    )


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("NIANBAO_DATA", raising=False)
    assert str(data_dir()) == "data"
    monkeypatch.setenv("NIANBAO_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert raw_dir() == tmp_path / "raw"


def test_versions_attachments_and_rotation(tmp_path):
    writer = ArchiveWriter(
        raw_dir(tmp_path), "beijing_test", "run1", max_warc_bytes=400
    )
    first = _write(
        writer,
        "https://a.gov.cn/r.html",
        "旧版本".encode() * 100,
        title="t",
        report_year=2023,
        attachments=[("https://a.gov.cn/r.pdf", "附件")],
    )
    _write(
        writer,
        "https://a.gov.cn/r.pdf",
        b"%PDF-old",
        kind="attachment",
        parent_record_id=first,
    )
    second = _write(
        writer,
        "https://a.gov.cn/r.html",
        "新版本".encode() * 100,
        title="t",
        report_year=2023,
        attachments=[("https://a.gov.cn/r.pdf", "附件")],
    )
    _write(
        writer,
        "https://a.gov.cn/r.pdf",
        b"%PDF-new",
        kind="attachment",
        parent_record_id=second,
    )
    writer.close()
    (report,) = iter_latest_reports(tmp_path)
    assert report.record_id == second and report.version == 2
    assert report.read_bytes() == "新版本".encode() * 100
    assert report.sha256 == hashlib.sha256(report.read_bytes()).hexdigest()
    assert [a.read_bytes() for a in report.attachments] == [b"%PDF-new"]
    assert (
        len(list((tmp_path / "raw" / "beijing_test").glob("*.warc.gz"))) == 4
    )  # rotated by size
    assert verify_archive(tmp_path) == []


def test_bytes_past_the_last_commit_are_cut_by_the_next_writer(tmp_path):
    writer = ArchiveWriter(raw_dir(tmp_path), "s", "run1")
    _write(writer, "https://a.gov.cn/1.html", b"one")
    name = writer._file
    writer.close()
    path = tmp_path / "raw" / name
    size = path.stat().st_size
    with path.open("ab") as handle:  # a killed writer's half record
        handle.write(b"\x1f\x8b\x08\x00garbage")
    assert verify_archive(tmp_path) == []  # readers stop at the committed size
    ArchiveWriter(raw_dir(tmp_path), "s", "run2").close()
    assert path.stat().st_size == size
    assert [r.read_bytes() for r in iter_latest_reports(tmp_path)] == [b"one"]


def test_reader_on_a_missing_archive_yields_nothing(tmp_path):
    assert list(iter_latest_reports(tmp_path / "nothing")) == []


def test_records_are_standard_gzip_members(tmp_path):
    """Any WARC tool reads the files: each record is one gzip member at its offset."""
    import gzip
    import zlib

    from warcio.archiveiterator import ArchiveIterator

    writer = ArchiveWriter(raw_dir(tmp_path), "beijing_test", "run1")
    bodies = {
        "https://a.gov.cn/1.html": "政府信息公开工作年度报告".encode() * 3000,
        "https://a.gov.cn/2.html": "二〇二三年".encode("gbk") * 50,
        "https://a.gov.cn/3.pdf": bytes(range(256)) * 40,
    }
    for url, body in bodies.items():
        _write(writer, url, body, title="t", report_year=2023)
    writer.close()
    (warc,) = (tmp_path / "raw" / "beijing_test").rglob("*.warc.gz")
    with warc.open("rb") as stream:
        read = {
            record.rec_headers.get_header(
                "WARC-Target-URI"
            ): record.content_stream().read()
            for record in ArchiveIterator(stream)
            if record.rec_type == "response"
        }
    assert read == bodies
    whole = gzip.decompress(warc.read_bytes())
    assert whole.startswith(b"WARC/1.1\r\nWARC-Type: warcinfo")
    assert whole.count(b"WARC-Type: response") == 3
    data = warc.read_bytes()
    with sqlite3.connect(tmp_path / "raw" / "manifest.sqlite") as manifest:
        rows = manifest.execute("SELECT url, warc_offset, warc_length FROM records")
        for url, offset, length in rows:
            member = zlib.decompressobj(zlib.MAX_WBITS + 16)
            record = member.decompress(data[offset : offset + length])
            assert member.eof and not member.unused_data
            assert record.startswith(b"WARC/1.1\r\nWARC-Type: response")
            assert record.endswith(bodies[url] + b"\r\n\r\n")


def test_verify_reports_a_missing_or_half_created_manifest(tmp_path):
    raw = raw_dir(tmp_path)
    manifest = raw / "manifest.sqlite"
    assert verify_archive(tmp_path) == [f"{manifest}: no manifest"]
    assert not manifest.exists()  # verifying creates nothing
    raw.mkdir()
    manifest.touch()  # a first run stopped before creating any table
    assert verify_archive(tmp_path) == [
        f"{manifest}: table(s) records, report_attachments, warc_files, runs, failures "
        "missing (the manifest was never fully created)"
    ]
    with sqlite3.connect(manifest) as con:
        con.execute("CREATE TABLE records (record_id TEXT)")
    assert verify_archive(tmp_path) == [
        f"{manifest}: table(s) report_attachments, warc_files, runs, failures missing "
        "(the manifest was never fully created)"
    ]
    manifest.write_bytes(b"not a database at all" * 100)
    (problem,) = verify_archive(tmp_path)
    assert problem.startswith(f"{manifest}: unreadable (")


def test_verify_reports_missing_and_cut_warc_files(tmp_path):
    writer = ArchiveWriter(raw_dir(tmp_path), "s", "run1")
    _write(writer, "https://a.gov.cn/1.html", b"one" * 1000)
    name = writer._file
    writer.close()
    path = tmp_path / "raw" / name
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    problems = verify_archive(tmp_path)
    assert (
        f"{name}: {len(data) - 10} bytes, shorter than the {len(data)} committed"
        in problems
    )
    path.unlink()
    problems = verify_archive(tmp_path)
    assert f"{name}: unreadable (No such file or directory)" in problems
    assert len(problems) == 2  # the file, and the record the manifest points into


def test_reports_carry_their_site_place_and_missing_attachments(tmp_path):
    site = ad_hoc_site("http://www.tjhq.gov.cn/zwgk/nb/", "120105", district="河北区")
    writer = ArchiveWriter(raw_dir(tmp_path), site.name, "run1", declaration=site)
    writer.start_run()
    record = _write(
        writer,
        "http://www.tjhq.gov.cn/zwgk/nb/t1.html",
        b"<html></html>",
        report_year=2023,
        attachments=[
            ("http://www.tjhq.gov.cn/zwgk/nb/a.pdf", "附件1"),
            ("http://www.tjhq.gov.cn/zwgk/nb/b.pdf", "附件2"),
        ],
    )
    _write(
        writer,
        "http://www.tjhq.gov.cn/zwgk/nb/a.pdf",
        b"%PDF",
        kind="attachment",
        parent_record_id=record,
    )
    writer.close()
    (report,) = iter_latest_reports(tmp_path)
    assert (report.division_code, report.province, report.city, report.district) == (
        "120105",
        "天津市",
        "天津市",
        "河北区",
    )
    assert [a.url for a in report.attachments] == [
        "http://www.tjhq.gov.cn/zwgk/nb/a.pdf"
    ]
    assert report.missing_attachments == ["http://www.tjhq.gov.cn/zwgk/nb/b.pdf"]


OLD_SCHEMA = """
CREATE TABLE records ({columns});
CREATE TABLE report_attachments (report_record_id TEXT NOT NULL, attachment_url TEXT NOT NULL,
    label TEXT, PRIMARY KEY (report_record_id, attachment_url));
CREATE TABLE warc_files (warc_file TEXT PRIMARY KEY, site TEXT NOT NULL,
    committed_size INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT NOT NULL, site TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, list_pages INTEGER, reports_found INTEGER, new INTEGER, changed INTEGER,
    unchanged INTEGER, failed INTEGER, attachments_new INTEGER, ok INTEGER, error TEXT,
    PRIMARY KEY (run_id, site));
CREATE TABLE failures (run_id TEXT NOT NULL, site TEXT NOT NULL, kind TEXT NOT NULL,
    url TEXT NOT NULL, status INTEGER, error TEXT NOT NULL, at TEXT NOT NULL);
"""


def test_a_manifest_from_before_places_reads_and_is_brought_up_to_date(tmp_path):
    raw = raw_dir(tmp_path)
    raw.mkdir(parents=True)
    con = sqlite3.connect(raw / "manifest.sqlite")
    con.executescript(OLD_SCHEMA.format(columns=", ".join(RECORD_FIELDS)))
    con.close()
    assert verify_archive(tmp_path) == []
    writer = ArchiveWriter(raw, "beijing_xicheng", "run1")
    writer.start_run()
    _write(writer, "https://www.bjxch.gov.cn/zt/a.html", b"<html></html>")
    writer.finish_run(
        RunCounts(),
        ok=True,
        error=None,
        warning="w",
        years={2023: 1},
    )
    writer.close()
    (report,) = iter_latest_reports(tmp_path)
    # No sites row was written (no declaration): the place is the declared site's.
    assert (report.division_code, report.district) == ("110102", "西城区")
    con = sqlite3.connect(raw / "manifest.sqlite")
    try:
        assert con.execute("SELECT warning FROM runs").fetchone() == ("w",)
        assert con.execute("SELECT * FROM run_years").fetchall() == [
            ("run1", "beijing_xicheng", 2023, 1)
        ]
    finally:
        con.close()
    assert verify_archive(tmp_path) == []
