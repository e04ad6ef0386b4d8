"""Records deflated by the helper process come back whole and in order, helper or not."""

from __future__ import annotations

import gzip
import os
import subprocess

from crawler.deflater import Deflater


def _records() -> list[tuple[bytes, ...]]:
    # Report-sized pages and incompressible attachments larger than a pipe holds.
    pages = [
        (b"WARC/1.1\r\n", "报告".encode() * 20_000 + str(n).encode()) for n in range(6)
    ]
    files = [(b"head", os.urandom(3 * 1024 * 1024), b"\r\n\r\n") for _ in range(3)]
    return [pages[0], files[0], *pages[1:3], *files[1:], *pages[3:]]


def _inflate(members) -> list[bytes]:
    return [gzip.decompress(member) for member in members]


def test_members_come_back_in_order_without_reading_in_between():
    deflater = Deflater(3)
    records = _records()
    for record in records:
        deflater.submit(record)  # nothing read: the helper must not block the writes
    assert _inflate(deflater.members(wait=True)) == [b"".join(r) for r in records]
    assert list(deflater.members(wait=False)) == []
    deflater.close()


def test_a_dead_helper_leaves_the_work_to_the_process():
    deflater = Deflater(3)
    records = _records()
    deflater.submit(records[0])
    first = list(deflater.members(wait=True))
    deflater._helper.kill()
    for record in records[1:]:
        deflater.submit(record)
    members = first + list(deflater.members(wait=True))
    assert _inflate(members) == [b"".join(r) for r in records]
    deflater.close()


def test_without_a_helper_records_are_deflated_in_process(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no processes left")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    deflater = Deflater(1)
    records = _records()[:3]
    for record in records:
        deflater.submit(record)
    assert _inflate(deflater.members(wait=False)) == [b"".join(r) for r in records]
    deflater.close()
