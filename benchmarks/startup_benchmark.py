"""Start-up of the commands users wait on, whole-process timings, median of 10 runs each.

Beside ``python3 -c pass`` (the interpreter alone: the baseline every command pays):

- ``nianbao --help``                 target ≤ 0.15 s (issue 18);
- ``nianbao parse`` on one HTML page (imports the parser and pandas, not pyarrow);
- ``scrapy list``                    (the crawler without pandas or pyarrow);
- the extraction step of ``nianbao run --demo`` into a new data directory, as a new user
  runs it, target ≤ 0.5 s: its own timing from the run record, median of the runs; the
  demo is small enough to be extracted in the command's own process. The converters'
  versions are remembered between runs (the first run on a machine asks them, +0.14 s);
- ``nianbao extract --all`` of the demo archive, in-process and with ``--workers 2``:
  what starting the worker pool costs, from which the break-even point of extracting
  in-process follows (2 workers finish W seconds of parsing in start-up + W/2, so
  in-process pays below W = 2 × start-up).

Commands take turns, so a busy moment of the machine spreads over all of them.

    python3 benchmarks/startup_benchmark.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.archive.reader import iter_latest_reports  # noqa: E402
from extract.dataset.pool import IN_PROCESS_BELOW_SECONDS, expected_seconds  # noqa: E402

PAGE = ROOT / "tests" / "fixtures" / "reports" / "shanghai-gov-office-2019.html"


def _nianbao(*args: str) -> list[str]:
    return [sys.executable, "-m", "nianbao.cli", *args]


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _extract_seconds(data_dir: Path, env: dict[str, str], *options: str) -> float:
    """The extraction step's own seconds, as the run record of ``nianbao extract`` says."""
    subprocess.run(
        _nianbao("extract", "--all", *options, "--data-dir", str(data_dir)),
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    runs = (data_dir / "runs").glob("*-extract.json")
    latest = max(runs, key=lambda path: path.stat().st_mtime)
    return json.loads(latest.read_text(encoding="utf-8"))["seconds"]


def _run_demo(data_dir: Path, env: dict[str, str]) -> None:
    subprocess.run(
        _nianbao("run", "--demo", "--data-dir", str(data_dir)),
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip


def _demo_extract_seconds(env: dict[str, str]) -> float:
    """The extraction step's seconds of ``nianbao run --demo`` into a new directory."""
    data_dir = Path(tempfile.mkdtemp(prefix="nianbao-demo-"))
    try:
        _run_demo(data_dir, env)
        (record,) = (data_dir / "runs").glob("*.json")
        return json.loads(record.read_text(encoding="utf-8"))["extract"]["seconds"]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    data_dir = Path(tempfile.mkdtemp(prefix="nianbao-startup-"))
    try:
        _run_demo(data_dir, env)
        expected = expected_seconds(list(iter_latest_reports(data_dir)))
        commands = {
            "python3 -c pass (baseline)": [sys.executable, "-c", "pass"],
            "nianbao --help": _nianbao("--help"),
            "nianbao parse <one HTML page>": _nianbao("parse", str(PAGE)),
            "scrapy list": [sys.executable, "-m", "scrapy.cmdline", "list"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        times["nianbao run --demo (extract step)"] = []
        times["nianbao extract --all (demo)"] = []
        times["nianbao extract --workers 2"] = []
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_timed(argv, env))
            times["nianbao run --demo (extract step)"].append(
                _demo_extract_seconds(env)
            )
            times["nianbao extract --all (demo)"].append(
                _extract_seconds(data_dir, env)
            )
            times["nianbao extract --workers 2"].append(
                _extract_seconds(data_dir, env, "--workers", "2")
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    baseline = statistics.median(times["python3 -c pass (baseline)"])
    print(f"median of {args.runs} runs, whole process (extract: its own step)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:34} {median:6.3f} s  {median / baseline:5.1f}× the interpreter")
    help_time = statistics.median(times["nianbao --help"])
    demo_time = statistics.median(times["nianbao run --demo (extract step)"])
    extract_time = statistics.median(times["nianbao extract --all (demo)"])
    pool_time = statistics.median(times["nianbao extract --workers 2"])
    start_up = max(pool_time - extract_time, 0.0)
    print(
        f"targets: --help ≤ 0.15 s: {help_time:.3f} s; "
        f"demo extraction ≤ 0.5 s: {demo_time:.3f} s"
    )
    print(
        f"worker pool start-up ≈ {start_up:.2f} s: in-process pays below "
        f"≈ {2 * start_up:.1f} s of expected parsing (IN_PROCESS_BELOW_SECONDS = "
        f"{IN_PROCESS_BELOW_SECONDS}; the demo is expected at {expected:.2f} s)"
    )


if __name__ == "__main__":
    main()
