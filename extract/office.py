"""Word documents to a ``Layout``: DOCX read directly, DOC and WPS through LibreOffice.

DOCX: the body's paragraphs are the narrative lines and its tables the grids, in document
order. Merged cells are expanded on the grid: ``w:gridSpan`` widens a cell, ``w:gridBefore``
shifts a row, and a ``w:vMerge`` continuation repeats the text of the cell it continues
(``carried``), as a rowspan does in HTML. Tables nested in a cell are read as their text.

DOC and WPS (Word 97 binary, Kingsoft WPS; both OLE compound files) are converted to DOCX
by LibreOffice headless (``soffice --convert-to docx``) in a private profile and a time
limit, then read as DOCX. A document that cannot be converted raises ``DocumentError``
naming why (LibreOffice missing, timed out, or refused the file).

LibreOffice fetches what a document links (an INCLUDEPICTURE field's image, a linked
picture) while it converts. It is kept offline twice over: its fresh profile blocks
linked content and sends any request to a proxy that is not there, and where the system
allows it (``unshare``) it runs in a network namespace of its own, with no network at
all. When it overruns its time limit its whole process group is killed and its folder
removed (``extract.tools.run_tool``).

A DOCX is a zip: its members are checked before anything is inflated (total size, ratio)
so a zip bomb is refused rather than unpacked.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from functools import cache
from pathlib import Path

from extract.errors import DocumentError
from extract.layout import Cell, Layout, Table
from extract.tools import run_tool

MAX_UNPACKED = 64 * 1024 * 1024  # bytes of all members together
MAX_RATIO = 200  # a member inflating more than this is a bomb, past 1 MiB
CONVERT_TIMEOUT = 90  # seconds for LibreOffice
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _check_zip(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as error:
        raise DocumentError(f"broken zip: {error}") from None
    if "word/document.xml" not in archive.namelist():
        raise DocumentError(
            "zip archive that is not a Word document (no word/document.xml)"
        )
    total = 0
    for member in members:
        total += member.file_size
        if member.file_size > 1024 * 1024 and member.file_size > MAX_RATIO * max(
            member.compress_size, 1
        ):
            raise DocumentError(
                f"zip bomb: {member.filename} inflates {member.compress_size} bytes "
                f"to {member.file_size}"
            )
    if total > MAX_UNPACKED:
        raise DocumentError(f"docx unpacks to {total} bytes, more than {MAX_UNPACKED}")
    return archive


def _text(element) -> str:
    """The text of a paragraph or cell: runs, tabs and breaks."""
    parts = []
    for node in element.iter(f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}p"):
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}p" and parts:
            parts.append("\n")
        else:
            parts.append(" ")
    return " ".join("".join(parts).split())


def _val(element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else found.get(f"{_W}val", "")


def _count(text: str | None, default: int, limit: int) -> int:
    """A gridSpan or gridBefore: ASCII digits up to ``limit``, anything else ``default``
    (as for an HTML span, "²" passes isdigit() and 5000 digits overflow int())."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 9:
        return default
    return min(int(text), limit)


def docx_table_rows(table) -> list[list[Cell]]:
    """A ``w:tbl`` element's rows on the grid, gridSpan and vMerge expanded."""
    rows: list[list[Cell]] = []
    above: dict[int, Cell] = {}  # grid column -> the cell that started there, last row
    for tr in table.iterfind(f"{_W}tr"):
        row: list[Cell] = []
        col = _count(_val(tr, f"{_W}trPr/{_W}gridBefore"), 0, 64)
        current: dict[int, Cell] = {}
        for tc in tr.iterfind(f"{_W}tc"):
            span = max(_count(_val(tc, f"{_W}tcPr/{_W}gridSpan"), 1, 64), 1)
            merge = _val(tc, f"{_W}tcPr/{_W}vMerge")
            if merge is not None and merge != "restart" and col in above:
                origin = above[col]
                cell = Cell(origin.text, col, span, True)
            else:
                cell = Cell(_text(tc), col, span)
            row.append(cell)
            current[col] = cell
            col += span
        above = current
        rows.append(row)
    return rows


def docx_layout(data: bytes) -> Layout:
    """Lay out a DOCX: paragraphs as lines, tables as grids, in body order."""
    import lxml.etree

    archive = _check_zip(data)
    try:
        xml = archive.read("word/document.xml")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as error:
        raise DocumentError(f"broken docx: {error}") from None
    parser = lxml.etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False
    )
    try:
        root = lxml.etree.fromstring(xml, parser)
    except lxml.etree.XMLSyntaxError as error:
        raise DocumentError(f"broken docx: {error}") from None
    body = root.find(f"{_W}body")
    layout = Layout()
    if body is None:
        return layout
    for element in body.iter(f"{_W}p", f"{_W}tbl"):
        if element.tag == f"{_W}tbl":
            if _inside(element, f"{_W}tbl"):
                continue
            rows = docx_table_rows(element)
            if rows:
                layout.blocks.append(Table(rows))
        elif not _inside(element, f"{_W}tbl"):
            text = _text(element)
            if text:
                layout.blocks.append(text)
    core = _core_title(archive)
    if core:
        layout.title = core
    return layout


def _inside(element, tag: str) -> bool:
    parent = element.getparent()
    while parent is not None:
        if parent.tag == tag:
            return True
        parent = parent.getparent()
    return False


def _core_title(archive: zipfile.ZipFile) -> str | None:
    import lxml.etree

    try:
        xml = archive.read("docProps/core.xml")
        root = lxml.etree.fromstring(xml, lxml.etree.XMLParser(resolve_entities=False))
    except (KeyError, lxml.etree.XMLSyntaxError, zipfile.BadZipFile, OSError):
        return None
    title = root.findtext("{http://purl.org/dc/elements/1.1/}title")
    return title.strip() if title and title.strip() else None


def soffice() -> str | None:
    """The LibreOffice binary, if installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


# The profile LibreOffice starts from (Common.xcs, Inet.xcs, Writer.xcs): content linked
# from a document not in a trusted location is blocked, links and fields are never
# updated, macros never run, and every HTTP, HTTPS or FTP request goes to a proxy on the
# discard port, where nothing answers (INCLUDEPICTURE in a .doc is fetched despite the
# block).
_OFFLINE_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting">
 <prop oor:name="BlockUntrustedRefererLinks" oor:op="fuse"><value>true</value></prop>
 <prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>true</value></prop>
</item>
<item oor:path="/org.openoffice.Office.Writer/Content/Update">
 <prop oor:name="Link" oor:op="fuse"><value>0</value></prop>
 <prop oor:name="Field" oor:op="fuse"><value>false</value></prop>
</item>
<item oor:path="/org.openoffice.Inet/Settings">
 <prop oor:name="ooInetProxyType" oor:op="fuse"><value>1</value></prop>
 <prop oor:name="ooInetNoProxy" oor:op="fuse"><value></value></prop>
 <prop oor:name="ooInetHTTPProxyName" oor:op="fuse"><value>127.0.0.1</value></prop>
 <prop oor:name="ooInetHTTPProxyPort" oor:op="fuse"><value>9</value></prop>
 <prop oor:name="ooInetHTTPSProxyName" oor:op="fuse"><value>127.0.0.1</value></prop>
 <prop oor:name="ooInetHTTPSProxyPort" oor:op="fuse"><value>9</value></prop>
 <prop oor:name="ooInetFTPProxyName" oor:op="fuse"><value>127.0.0.1</value></prop>
 <prop oor:name="ooInetFTPProxyPort" oor:op="fuse"><value>9</value></prop>
</item>
</oor:items>
"""
_NO_NETWORK = ["unshare", "--user", "--map-root-user", "--net"]


@cache
def network_namespace() -> list[str]:
    """The command prefix that runs a program with no network, or [] where the system
    does not allow one (no unshare, or user namespaces disabled)."""
    if shutil.which("unshare") is None:
        return []
    try:
        done = subprocess.run(
            [*_NO_NETWORK, "true"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return _NO_NETWORK if done.returncode == 0 else []


def offline_profile(folder: Path) -> Path:
    """A fresh LibreOffice user profile in ``folder`` that fetches nothing."""
    profile = folder / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(
        _OFFLINE_PROFILE, encoding="utf-8"
    )
    return profile


def convert(data: bytes, suffix: str, target: str = "docx") -> bytes:
    """Convert a document with LibreOffice headless; ``DocumentError`` if it cannot."""
    binary = soffice()
    if binary is None:
        raise DocumentError(
            f"{suffix} needs LibreOffice to convert, which is not installed"
        )
    with tempfile.TemporaryDirectory(prefix="nianbao-lo-") as folder:
        tmp = Path(folder)
        source = tmp / f"report.{suffix}"
        source.write_bytes(data)
        command = [
            *network_namespace(),
            binary,
            f"-env:UserInstallation={offline_profile(tmp).as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            target,
            "--outdir",
            str(tmp / "out"),
            str(source),
        ]
        try:
            done = run_tool(
                command, timeout=CONVERT_TIMEOUT, env={**os.environ, "HOME": str(tmp)}
            )
        except subprocess.TimeoutExpired:
            raise DocumentError(
                f"LibreOffice did not convert the {suffix} within {CONVERT_TIMEOUT} s"
            ) from None
        out = tmp / "out" / f"report.{target}"
        if not out.exists() or out.stat().st_size == 0:
            reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise DocumentError(
                f"LibreOffice could not convert the {suffix}"
                + (f": {reason[-1]}" if reason else "")
            )
        return out.read_bytes()


def ole_layout(data: bytes, kind: str) -> Layout:
    """A DOC or WPS document, converted to DOCX and laid out."""
    return docx_layout(convert(data, kind))
