"""Rerunning extraction on the archive: reports/s, overhead beyond parse_report, peak memory.

Builds raw archives (WARC + manifest, by the crawler's own ArchiveWriter) of realistic
reports at each size: mostly Word-style HTML pages (every layout deviation of
tests/fixtures/wordstyle.py), about 10% attachment-only pages whose report is a PDF (one
page of a LibreOffice-made report, table 二 or table 三; with ``--whole-pdfs``, one of the
fixtures' whole PDF reports of 4–6 pages, real ones among them), and about 1% with a
DOCX. For each size it times, in one run:

- the sum of ``parse_report`` alone (page plus attachments, as the dataset reads them) on
  every document, in this process on one core: the baseline;
- the same in two processes at once, half the documents each: what two cores give two
  workers here at best, beside which the 2-worker speed-up is read;
- ``nianbao extract --all --workers N`` in a process of its own, with 1 and with 2
  workers (whole-process time, imports included), with the peak resident memory of the
  driver and its workers together, sampled every 0.1 s, and their CPU seconds beside
  the baseline's (what the run spends beyond parsing, wherever it runs). Each is a
  rerun: an untimed run first publishes the version whose cells both compare theirs
  with.

Targets (issue 13): overhead beyond parse_report ≤ 15% on one worker; 2 workers ≥ 1.8×
one; peak RSS at the largest size ≤ 1.2× that at the smallest.

With ``--pdf-before [REV]`` each size is also extracted (1 worker) with the PDF reader of
git revision REV (default: the pdfplumber reader before PDFium, as pdf_benchmark.py
loads it; it needs ``pip install pdfplumber``), put into every process of the run by a
``sitecustomize`` module: the CPU seconds a report of both, driver and workers together
(issue 18's target: at least halved).

    python3 benchmarks/rerun_benchmark.py [--sizes 2000,10000,20000] [--keep DIR]
        [--pdf-before [REV]] [--whole-pdfs]
"""

from __future__ import annotations

import argparse
import gc
import io
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pypdfium2  # noqa: E402
from dataset_benchmark import agency_names  # noqa: E402
from extract_benchmark import random_style  # noqa: E402
from pdf_benchmark import BEFORE  # noqa: E402

from crawler.archive.manifest import utc_now  # noqa: E402
from crawler.archive.reader import iter_latest_reports  # noqa: E402
from crawler.archive.record import Fetched  # noqa: E402
from crawler.archive.writer import ArchiveWriter  # noqa: E402
from extract import load  # noqa: E402
from extract.attachments import parse_report_with_attachments  # noqa: E402
from tests.fixtures.wordstyle import random_spec, render_page  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "reports"
PDF_SHARE, DOCX_SHARE = 0.10, 0.01
BASE = "https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/"


def one_page_pdfs() -> list[bytes]:
    """Pages 2 and 3 of a LibreOffice-made report (tables 二 and 三), each as a PDF."""
    source = pypdfium2.PdfDocument((FIXTURES / "lo-word-2021-pdf.pdf").read_bytes())
    pages = []
    for index in (1, 2):
        single = pypdfium2.PdfDocument.new()
        single.import_pages(source, [index])
        buffer = io.BytesIO()
        single.save(buffer)
        pages.append(buffer.getvalue())
    return pages


def link_page(agency: str, year: int, href: str) -> bytes:
    title = f"{agency}{year}年政府信息公开工作年度报告"
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f'<body><div class="gknbxq_detail"><h1>{title}</h1><p>本报告全文见附件。</p>'
        f'<p><a href="{href}">{title}</a></p></div></body></html>'
    ).encode()


def whole_pdfs() -> list[bytes]:
    """The fixtures' PDF reports whole: two real ones (5 and 6 pages) and a
    LibreOffice-made one (4 pages)."""
    return [path.read_bytes() for path in sorted(FIXTURES.glob("*.pdf"))]


def build_archive(
    data_dir: Path, reports: int, seed: int, *, whole: bool = False
) -> None:
    """An archive of ``reports`` reports; ``whole``: PDF attachments are whole reports
    of 4–6 pages instead of one page each."""
    rng = random.Random(seed)
    agencies = agency_names(reports // 5 + 1, rng)
    pdfs = whole_pdfs() if whole else one_page_pdfs()
    docx = (FIXTURES / "lo-word-2021-docx.docx").read_bytes()
    writer = ArchiveWriter(data_dir / "raw", "beijing_xicheng", "bench")
    for i in range(reports):
        agency, year = agencies[i // 5], 2019 + i % 5
        url = f"{BASE}pnidpv{i // 5}pntypepvnbpnnfpv{year}.html"
        draw = rng.random()
        attachment = None
        if draw < PDF_SHARE:
            attachment = (f"{BASE}files/W{i}.pdf", rng.choice(pdfs), b"application/pdf")
        elif draw < PDF_SHARE + DOCX_SHARE:
            attachment = (
                f"{BASE}files/W{i}.docx",
                docx,
                b"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            )
        if attachment:
            page = link_page(agency, year, attachment[0])
        else:
            spec = random_spec(rng)
            spec.agency, spec.year = agency, year
            style = random_style(rng)
            style.padding_paragraphs = min(style.padding_paragraphs, 200)
            page = render_page(spec, style)
        fields = {"fetched_at": utc_now(), "status": 200}
        record = writer.write(Fetched(
            kind="report", url=url, final_url=url,
            headers=[(b"Content-Type", b"text/html; charset=utf-8")], body=page,
            agency=agency, report_year=year, title=f"{agency}{year}年政府信息公开工作年度报告",
            attachments=[(attachment[0], "附件")] if attachment else (), **fields,
        ))  # fmt: skip
        if attachment:
            writer.write(Fetched(
                kind="attachment", url=attachment[0], final_url=attachment[0],
                headers=[(b"Content-Type", attachment[2])], body=attachment[1],
                parent_url=url, parent_record_id=record, **fields,
            ))  # fmt: skip
    writer.close()


class PeakMemory:
    """Peak resident memory of this process's descendants together, sampled."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            children = _children(os.getpid())
            self.peak = max(self.peak, sum(_tree_rss(child) for child in children))
            self._stop.wait(self.interval)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _tree_rss(pid: int) -> int:
    total = 0
    for member in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        if member != pid:
            total += sum(_tree_rss_children(member))
    return total


def _tree_rss_children(pid: int) -> list[int]:
    return [_tree_rss(child) for child in _children(pid)]


def parse_alone(sources) -> float:
    # This process holds the archive it built and its listing: frozen out of the
    # collector's full passes, so the baseline times parse_report, not this heap (at
    # 20,000 reports they made it a fifth slower).
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    for source in sources:
        files = [(a.read_bytes(), a.url, a.content_type) for a in source.attachments]
        parse_report_with_attachments(
            source.read_bytes(), source.url, source.content_type, files
        )
    seconds = time.perf_counter() - started
    gc.unfreeze()
    return seconds


def parse_side_by_side(sources) -> float:
    """Seconds for two processes to run ``parse_alone`` on half the sources each, at once:
    what two cores of this machine give two workers at best, to read the 2-worker
    speed-up against (two such processes were 1.6x to 2x one, run after run, here)."""
    halves = [sources[0::2], sources[1::2]]
    # Forked, so each inherits its half of the listing instead of receiving it pickled.
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(2) as pool:
        pool.map(parse_alone, halves, chunksize=1)
    return time.perf_counter() - started


# Loaded at start-up by every process of an extraction (the driver and its spawned
# workers), through PYTHONPATH: the reader of another revision in place of today's.
_SITECUSTOMIZE = """\
import importlib.util
import sys

import extract.pdf as current
from extract.problems import Problem

spec = importlib.util.spec_from_file_location("extract._pdf_before", {path!r})
before = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = before
spec.loader.exec_module(before)


def pdf_layout(data, ocr=None):
    found = before.pdf_layout(data, ocr=ocr)
    # That reader's problems were text; today's callers read codes.
    issues = [
        Problem("image_page_not_read" if "image" in text else "page_unreadable", None, text)
        for text in found.problems
    ]
    return current.PdfResult(found.layout, issues, found.ocr_pages, found.pages)


current.pdf_layout = pdf_layout
"""


def reader_of(revision: str, folder: Path) -> Path:
    """A folder for PYTHONPATH that puts revision's extract/pdf.py in every process."""
    source = subprocess.run(
        ["git", "show", f"{revision}:extract/pdf.py"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pdf_before.py").write_bytes(source)
    (folder / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.format(path=str(folder / "pdf_before.py")), encoding="utf-8"
    )
    return folder


def extract_all(data_dir: Path, workers: int, path: str) -> tuple[float, float, int]:
    """``nianbao extract --all`` in a process of its own: seconds, CPU seconds of it and
    its workers, and their peak resident memory together."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    with PeakMemory() as memory:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nianbao.cli", "extract", "--all",
             "--workers", str(workers), "--data-dir", str(data_dir)],
            check=True, capture_output=True, env={**os.environ, "PYTHONPATH": path},
        )  # fmt: skip
        seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    return seconds, used, memory.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000,20000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, help="build under this directory and keep it"
    )
    parser.add_argument(
        "--pdf-before", nargs="?", const=BEFORE, metavar="REV",
        help=f"also extract with the PDF reader of REV (default {BEFORE}: pdfplumber's)",
    )  # fmt: skip
    parser.add_argument(
        "--whole-pdfs", action="store_true",
        help="PDF attachments are whole reports of 4-6 pages, not one page each",
    )  # fmt: skip
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="nianbao-rerun-"))
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        data_dir = base / f"data-{size}"
        build_archive(data_dir, size, args.seed, whole=args.whole_pdfs)
        sources = list(iter_latest_reports(data_dir))
        attached = sum(1 for s in sources if s.attachments)
        alone = parse_alone(sources)
        paired = parse_side_by_side(sources)
        result = {"size": size, "attached": attached, "alone": alone}
        # A rerun finds the version an earlier run published, and compares its cells
        # with it: both timed runs do, or the second alone would pay for comparing.
        extract_all(data_dir, 2, str(ROOT))
        for workers in (1, 2):
            # As an operator runs it: `nianbao extract` in a process of its own, whose
            # tree (driver and workers) is sampled; this process's own heap, which
            # the parse_report pass above has grown, is not counted.
            seconds, cpu, peak = extract_all(data_dir, workers, str(ROOT))
            result[workers], result[f"cpu{workers}"], result[f"rss{workers}"] = (
                seconds,
                cpu,
                peak,
            )
            result["statuses"] = (
                load("reports", data_dir=data_dir)["status"].value_counts().to_dict()
            )
        if args.pdf_before:
            folder = reader_of(args.pdf_before, base / "pdf-before")
            _, result["cpu_before"], _ = extract_all(
                data_dir, 1, f"{folder}{os.pathsep}{ROOT}"
            )
        rows.append(result)
        print(
            f"{size:>6} reports ({attached} with attachments): parse_report alone "
            f"{alone:6.1f} s ({size / alone:5.1f}/s); extract --all 1 worker "
            f"{result[1]:6.1f} s ({size / result[1]:5.1f}/s, overhead "
            f"{result[1] / alone - 1:+.0%}, peak RSS {result['rss1'] >> 20} MiB); "
            f"2 workers {result[2]:6.1f} s ({size / result[2]:5.1f}/s, "
            f"{result[1] / result[2]:.2f}x one, peak RSS {result['rss2'] >> 20} MiB)",
            flush=True,
        )
        print(
            f"        two parse_report processes side by side: {alone / paired:.2f}x one "
            f"(this machine's 2-core ceiling); 2 workers reach "
            f"{(result[1] / result[2]) / (alone / paired):.0%} of it",
            flush=True,
        )
        print(
            f"        CPU beyond parse_report (driver and workers): 1 worker "
            f"{result['cpu1'] / alone - 1:+.0%}, 2 workers {result['cpu2'] / alone - 1:+.0%}",
            flush=True,
        )
        print(f"        statuses: {result['statuses']}", flush=True)
        if args.pdf_before:
            now, before = result["cpu1"] / size, result["cpu_before"] / size
            print(
                f"        CPU a report, 1 worker: {1000 * now:.1f} ms with PDFium, "
                f"{1000 * before:.1f} ms with the reader of {args.pdf_before}: "
                f"{before / now:.2f}x less (target ≥ 2x)",
                flush=True,
            )
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        for workers in (1, 2):
            ratio = last[f"rss{workers}"] / first[f"rss{workers}"]
            print(
                f"peak RSS {workers} worker(s), {last['size']} vs {first['size']} "
                f"reports: {ratio:.2f}x (target ≤ 1.2x)"
            )
    print(f"\narchives kept in {base}" if args.keep else "")


if __name__ == "__main__":
    main()
