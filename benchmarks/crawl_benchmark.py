"""What the raw archive costs a crawl: pages/s of a bare spider versus the real one.

Builds a loopback snapshot of a 东城-shaped TRS site (year columns, category columns
paginated index.html, index_1.html …, report pages of 30–140 KB from the fixture reports,
a PDF per five reports), a few thousand pages, served with keep-alive on 127.0.0.1. Then, in
two child processes (Scrapy's reactor starts once per process):

- bare: a plain scrapy.Spider that requests the same URLs and keeps nothing;
- real: ``run_crawl(["beijing_dongcheng"], mirror=…)``: discovery, decoding, the archive.

Both use the same concurrency with AutoThrottle and delays off, so the difference is the work
done per page. Prints pages/s of each and real/bare, and the process CPU per page each spent
between its spider's opening and closing: where the loopback server (threads of one Python
process) cannot keep up with the bare spider, the bare run waits and the pages/s ratio
flatters the real one; the CPU ratio does not depend on the server.

    python3 benchmarks/crawl_benchmark.py [--reports 2500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "CONCURRENT_ITEMS": 1,
    "REMOTE_CONTROL_ENABLED": False,
    "TELNETCONSOLE_ENABLED": False,
    "LOG_LEVEL": "ERROR",
}
ROOT_URL = "https://www.bjdch.gov.cn/zfxxgkzl/zfxxgknb/"
PER_PAGE = 20


def build_pages(reports: int) -> tuple[dict, list[str]]:
    """The snapshot (path → Page) and the list of real URLs in it."""
    from nianbao.demo.server import Page
    from tests.fixtures.sites.snapshot import (
        PDF,
        Report,
        _list_page,
        _trs_page,
        _trs_pager,
        body_of,
    )

    stems = [
        "word-2021-transposed",
        "word-2021-partial",
        "xicheng-liaison-office-2023",
        "shanghai-gov-office-2019",
    ]
    bodies = {s: body_of(s) for s in stems}
    pages: dict[str, Page] = {}
    urls: list[str] = []

    def add(
        url: str, body: bytes, content_type: str = "text/html; charset=utf-8"
    ) -> None:
        pages["/" + url.split("://", 1)[1]] = Page(body, content_type)
        urls.append(url)

    years = list(range(2020, 2026))
    slugs = ["dcqzf", "dcqzfbm", "dcqid"]
    columns = [(y, f"{s}{y}") for y in years for s in slugs]
    per_column = -(-reports // len(columns))
    n = 0
    for year in years:
        add(
            f"{ROOT_URL}{year}nb/",
            _list_page(
                f"{year}", [], columns=[(f"{s}{year}/", s) for s in slugs]
            ).encode(),
        )
    for year, slug in columns:
        base = f"{ROOT_URL}{year}nb/{slug}/"
        items = []
        for _i in range(per_column):
            if n >= reports:
                break
            n += 1
            doc = 3_000_000 + n
            url = f"{base}{year + 1}01/t{year + 1}0120_{doc}.html"
            title = f"北京市东城区第{n}单位{year}年政府信息公开工作年度报告"
            files = {f"./P{year + 1}0120_{doc}.pdf": PDF} if n % 5 == 0 else {}
            report = Report(
                url,
                title,
                f"北京市东城区第{n}单位",
                year,
                body=stems[n % len(stems)],
                attachments=files,
            )
            add(
                url,
                _trs_page(report, bodies, title_in_body=False)
                .replace("</body>", f"<!-- {doc} --></body>")
                .encode(),
            )
            for href in files:
                add(
                    url.rsplit("/", 1)[0] + "/" + href[2:],
                    PDF + str(doc).encode(),
                    "application/pdf",
                )
            items.append((url.removeprefix(base), title, title))
        chunks = [items[i : i + PER_PAGE] for i in range(0, len(items), PER_PAGE)] or [
            []
        ]
        for index, chunk in enumerate(chunks):
            name = "" if index == 0 else f"index_{index}.html"
            add(
                base + name,
                _list_page(slug, chunk, _trs_pager(len(chunks), index)).encode(),
            )
    return pages, urls


def run_bare(url_file: str, mirror: str) -> None:
    """Child: fetch every URL, keep nothing."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    from crawler.middlewares import to_mirror

    urls = [to_mirror(u, mirror) for u in Path(url_file).read_text().split()]

    class BareSpider(scrapy.Spider):
        name = "bare"

        async def start(self):
            for url in urls:
                yield scrapy.Request(url, callback=self.parse, dont_filter=True)

        def parse(self, response):
            return None

    process = CrawlerProcess({**SETTINGS, "ROBOTSTXT_OBEY": False})
    crawler = process.create_crawler(BareSpider)
    process.crawl(crawler)
    process.start()
    elapsed = crawler.stats.get_value("elapsed_time_seconds")
    pages = crawler.stats.get_value("downloader/response_status_count/200", 0)
    print(
        json.dumps(
            {
                "pages": pages,
                "seconds": elapsed,
                "cpu": _cpu(),
                "crawl_cpu": CrawlCpu.spent,
            }
        )
    )


def run_real(mirror: str, data_dir: str) -> None:
    """Child: the real spider and archive."""
    import sqlite3

    from crawler.cli import run_crawl

    summary = run_crawl(
        ["beijing_dongcheng"], mirror=mirror, data_dir=Path(data_dir), settings=SETTINGS
    )
    con = sqlite3.connect(Path(data_dir) / "raw" / "manifest.sqlite")
    archived = con.execute("SELECT count(*) FROM records").fetchone()[0]
    site = summary.site("beijing_dongcheng")
    print(
        json.dumps(
            {
                "pages": archived,
                # Scrapy's elapsed_time_seconds, from the spider's opening to its closing,
                # as for the bare run (the runs table starts before Scrapy builds its engine).
                "seconds": site.seconds,
                "reports": site.counts.new,
                "ok": summary.ok,
                "cpu": _cpu(),
                "crawl_cpu": CrawlCpu.spent,
            }
        )
    )


class CrawlCpu:
    """Scrapy extension: process CPU seconds from spider_opened to spider_closed."""

    spent: float | None = None

    @classmethod
    def from_crawler(cls, crawler):
        from scrapy import signals

        meter = cls()
        crawler.signals.connect(meter.opened, signals.spider_opened)
        crawler.signals.connect(meter.closed, signals.spider_closed)
        return meter

    def opened(self, spider) -> None:
        self.started = _cpu()

    def closed(self, spider) -> None:
        CrawlCpu.spent = _cpu() - self.started


# Both children also time the CPU their process spends between the spider's opening and its
# closing, which leaves out start-up (imports) and does not depend on how fast the loopback
# server answers.
SETTINGS["EXTENSIONS"] = {CrawlCpu: 0}


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build, serve, crawl twice, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=2500)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="pairs of runs; the median ratio is printed",
    )
    args = parser.parse_args()
    from nianbao.demo.server import SnapshotServer

    pages, urls = build_pages(args.reports)
    size = sum(len(p.body) for p in pages.values())
    print(f"snapshot: {len(urls)} URLs ({size / 1e6:.0f} MB), {args.reports} reports")
    ratios, cpu_ratios = [], []
    with SnapshotServer(pages) as server, tempfile.TemporaryDirectory() as tmp:
        url_file = Path(tmp) / "urls.txt"
        url_file.write_text("\n".join(urls))
        for i in range(args.repeat):
            bare = _child(["--bare", str(url_file), server.url])
            real = _child(["--real", server.url, str(Path(tmp) / f"data{i}")])
            bare_rate = bare["pages"] / bare["seconds"]
            real_rate = real["pages"] / real["seconds"]
            ratios.append(real_rate / bare_rate)
            print(
                f"bare scrapy spider : {bare['pages']} pages in {bare['seconds']:.1f} s = {bare_rate:.0f} pages/s "
                f"(process CPU {bare['cpu']:.1f} s)"
            )
            print(
                f"nianbao + archive  : {real['pages']} pages in {real['seconds']:.1f} s = {real_rate:.0f} pages/s "
                f"({real['reports']} reports archived, ok={real['ok']}, process CPU {real['cpu']:.1f} s)"
            )
            print(
                f"ratio real/bare    : {real_rate / bare_rate:.2f} (archive cost {1 - real_rate / bare_rate:.0%})"
            )
            bare_ms = 1000 * bare["crawl_cpu"] / bare["pages"]
            real_ms = 1000 * real["crawl_cpu"] / real["pages"]
            cpu_ratios.append(bare_ms / real_ms)
            print(
                f"CPU per page       : bare {bare_ms:.2f} ms, real {real_ms:.2f} ms, "
                f"bare/real {bare_ms / real_ms:.2f} (the ratio if the server never kept the spider waiting)"
            )
    if len(ratios) > 1:
        print(f"median ratio over {len(ratios)} pairs: {statistics.median(ratios):.2f}")
        print(
            f"median CPU ratio over {len(ratios)} pairs: {statistics.median(cpu_ratios):.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        run_bare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--real":
        run_real(sys.argv[2], sys.argv[3])
    else:
        main()
