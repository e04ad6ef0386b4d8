"""The dataset at scale: an archive of 10,000 realistic reports, extracted and loaded.

Builds a raw archive (WARC + manifest, written by the crawler's own ArchiveWriter) of
Word-style report pages — 2,000 agencies × 5 years, every layout deviation of
tests/fixtures/wordstyle.py — then prints, in one run:

- ``nianbao extract --all`` throughput with one worker and with two (the scaling target is
  ≥ 1.7× on two cores), beside the bare one-core parse_report rate on the same pages;
- the time to load all years of ``applications`` with pandas and with DuckDB (target
  < 0.5 s for ~1.75 million cells) and one agency-year with a filter (target < 0.05 s).

    python3 benchmarks/dataset_benchmark.py [--reports 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
from extract_benchmark import random_style  # noqa: E402

from crawler.archive.manifest import utc_now  # noqa: E402
from crawler.archive.reader import iter_latest_reports  # noqa: E402
from crawler.archive.record import Fetched  # noqa: E402
from crawler.archive.writer import ArchiveWriter  # noqa: E402
from extract import load, parse_report  # noqa: E402
from extract.agencies import DISTRICTS  # noqa: E402
from extract.dataset.build import build_dataset  # noqa: E402
from tests.fixtures.wordstyle import random_spec, render_page  # noqa: E402

UNITS = [
    "发展和改革委员会", "教育委员会", "科学技术和信息化局", "民政局", "司法局", "财政局",
    "人力资源和社会保障局", "生态环境局", "住房和城乡建设委员会", "卫生健康委员会", "市场监督管理局",
    "统计局", "医疗保障局", "城市管理委员会", "文化和旅游局", "退役军人事务局", "应急管理局",
    "人民政府办公室", "信访办公室", "政务服务管理局",
]  # fmt: skip
STREETS = [
    "什刹海",
    "金融街",
    "德胜",
    "新街口",
    "展览路",
    "月坛",
    "广安门内",
    "牛街",
    "椿树",
    "陶然亭",
    "天桥",
    "白纸坊",
    "大栅栏",
    "西长安街",
    "广安门外",
]


def agency_names(count: int, rng: random.Random) -> list[str]:
    names = set()
    districts = list(DISTRICTS)
    while len(names) < count:
        district = rng.choice(districts)
        if rng.random() < 0.6:
            names.add(f"北京市{district}{rng.choice(UNITS)}")
        else:
            names.add(
                f"北京市{district}{rng.choice(STREETS)}{rng.randint(1, 40)}街道办事处"
            )
    return sorted(names)


def build_archive(data_dir: Path, reports: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    agencies = agency_names(reports // 5, rng)
    writer = ArchiveWriter(data_dir / "raw", "beijing_xicheng", "bench")
    sample = []
    started = time.perf_counter()
    for i in range(reports):
        agency, year = agencies[i // 5], 2019 + i % 5
        spec = random_spec(rng)
        spec.agency, spec.year = agency, year
        style = random_style(rng)
        style.padding_paragraphs = min(style.padding_paragraphs, 200)
        page = render_page(spec, style)
        if len(sample) < 200:
            sample.append(page)
        writer.write(
            Fetched(
                kind="report",
                url=f"https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv{i // 5}pntypepvnbpnnfpv{year}.html",
                final_url=f"https://www.bjxch.gov.cn/zt/xxgkzl/gknbxq/pnidpv{i // 5}pntypepvnbpnnfpv{year}.html",
                status=200,
                headers=[(b"Content-Type", b"text/html")],
                body=page,
                fetched_at=utc_now(),
                agency=agency,
                report_year=year,
                title=f"{agency}{year}年政府信息公开工作年度报告",
            )
        )
        if (i + 1) % 1000 == 0:
            rate = (i + 1) / (time.perf_counter() - started)
            print(
                f"\rarchive {i + 1}/{reports} ({rate:.0f}/s)", end="", file=sys.stderr
            )
    writer.close()
    print(file=sys.stderr)
    return sample


def timed(function, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="build in this directory and keep it")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="nianbao-bench-"))
    data_dir = base / "data"
    sample = build_archive(data_dir, args.reports, args.seed)
    sizes = [len(p) / 1000 for p in sample]
    print(f"archive: {args.reports} reports, sample pages {min(sizes):.0f}–{max(sizes):.0f} KB "
          f"(mean {statistics.mean(sizes):.0f} KB)")  # fmt: skip

    started = time.perf_counter()
    for page in sample:
        parse_report(page)
    bare = len(sample) / (time.perf_counter() - started)

    rates = {}
    for workers in (1, 2):
        sources = list(iter_latest_reports(data_dir))
        started = time.perf_counter()
        summary = build_dataset(sources, data_dir, force=True, workers=workers)
        elapsed = time.perf_counter() - started
        rates[workers] = len(sources) / elapsed
        print(f"extract --all, {workers} worker(s): {rates[workers]:6.1f} reports/s "
              f"({elapsed:.1f} s; {summary.rows['applications']:,} application cells)")  # fmt: skip
    print(f"one-core parse_report on the same pages: {bare:6.1f} reports/s")
    print(f"two cores / one core = {rates[2] / rates[1]:.2f}x (target ≥ 1.7x)")

    root = data_dir / "parquet" / "applications"
    all_pandas, frame = timed(lambda: pd.read_parquet(root))
    all_load, _ = timed(lambda: load("applications", data_dir=data_dir))
    query = f"SELECT * FROM read_parquet('{root}/*/*.parquet', hive_partitioning=true)"
    all_duck, _ = timed(lambda: duckdb.connect().sql(query).arrow().read_all())
    all_duck_pandas, _ = timed(lambda: duckdb.connect().sql(query).df(), repeat=1)
    agency = frame["agency_id"].iloc[len(frame) // 2]
    one_load, cells = timed(
        lambda: load("applications", agency=agency, year=2021, data_dir=data_dir)
    )
    one_duck, _ = timed(
        lambda: (
            duckdb.connect()
            .sql(
                f"SELECT * FROM read_parquet('{root}/*/*.parquet', hive_partitioning=true) "
                f"WHERE year = 2021 AND agency_id = '{agency}'"
            )
            .df()
        )
    )
    print(f"\nload all years of applications ({len(frame):,} cells):")
    print(f"  pandas.read_parquet      {all_pandas:.3f} s (target < 0.5 s)")
    print(f"  extract.load             {all_load:.3f} s")
    print(f"  DuckDB → Arrow           {all_duck:.3f} s")
    print(
        f"  DuckDB → pandas (.df())  {all_duck_pandas:.3f} s (DuckDB makes a Python str per cell)"
    )
    print(f"one agency-year ({len(cells)} cells):")
    print(f"  extract.load(agency=, year=)  {one_load:.4f} s (target < 0.05 s)")
    print(f"  DuckDB WHERE → pandas         {one_duck:.4f} s")
    print(f"\ndata kept in {base}" if args.keep else "")


if __name__ == "__main__":
    main()
