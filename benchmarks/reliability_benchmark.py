"""Damaged and hostile documents through ``parse_report``: exceptions, time and memory.

Run from the repo root: ``python3 benchmarks/reliability_benchmark.py [--inputs N]
[--jobs J] [--seed S] [--time-limit SECONDS] [--memory-limit MIB] [--save DIR]``.

Regenerates, from a seed, damaged documents from every fixture in
tests/fixtures/reports (and a page image rendered from one): truncations, bit flips,
byte insertions and deletions, span attributes (colspan="²", 5000 digits, …), declared
charsets ("undefined", base64, …), a DOCX's XML damaged inside a sound zip, plus every
crafted case of tests/fixtures/hostile.py (reference cycles, oversized pages, noise
scans, 10^5 nested tables, …). Each document is parsed in a child process of its own,
forked from this one, under a time limit (SIGTERM, then SIGKILL 10 s later) and a memory
limit (RLIMIT_AS). Printed: inputs tried, exceptions, over time, out of memory, other
deaths, peak memory (max RSS of the child and the tools it waited for), the slowest
inputs, statuses, and every input that failed. ``--save`` writes the failed inputs
there. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import resource
import signal
import sys
import time
import traceback
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from extract import parse_report  # noqa: E402
from tests.fixtures import hostile  # noqa: E402

REPORTS = ROOT / "tests" / "fixtures" / "reports"
STATUSES = {"ok", "checks_failed", "partial", "no_tables"}
# What parts of a document's weight each kind of fixture gets; the DOC (LibreOffice,
# over a second each) and the page image (Tesseract) are kept few.
WEIGHTS = {"html": 40, "txt": 10, "pdf": 26, "docx": 16, "doc": 3, "png": 5}


@dataclass
class Case:
    """One input: a name that says how it was made, its bytes, URL and content type."""

    name: str
    data: bytes
    url: str
    content_type: str | None = None


@dataclass
class Outcome:
    case: Case
    kind: str  # ok (a Report with a valid status), exception, over_time, memory, died
    seconds: float
    max_rss_kib: int
    status: str | None = None
    detail: str = ""


@dataclass
class Fixture:
    name: str
    kind: str
    data: bytes
    cases: list[Case] = field(default_factory=list)


# -- damaging documents --------------------------------------------------------------


def truncate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cut = rng.choice([rng.randrange(len(data)), len(data) - rng.randrange(1, 64)])
    return f"truncate@{cut}", data[: max(cut, 0)]


def bit_flips(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    damaged = bytearray(data)
    flips = rng.choice([1, 1, 2, 4, 8, 32])
    for _ in range(flips):
        position = rng.randrange(len(damaged))
        damaged[position] ^= 1 << rng.randrange(8)
    return f"flip{flips}", bytes(damaged)


def insertions(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    damaged = bytearray(data)
    count = rng.randint(1, 4)
    for _ in range(count):
        position = rng.randrange(len(damaged) + 1)
        if rng.random() < 0.5:
            chunk = rng.randbytes(rng.randint(1, 256))
        else:  # a slice of the document itself, which keeps its syntax
            start = rng.randrange(len(damaged))
            chunk = bytes(damaged[start : start + rng.randint(1, 4096)])
        damaged[position:position] = chunk
    return f"insert{count}", bytes(damaged)


def deletions(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    damaged = bytearray(data)
    count = rng.randint(1, 4)
    for _ in range(count):
        start = rng.randrange(len(damaged))
        del damaged[start : start + rng.randint(1, 1024)]
    return f"delete{count}", bytes(damaged)


_SPAN = re.compile(rb"""(colspan|rowspan)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_CELL = re.compile(rb"<t[dh]\b", re.I)


def spans(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A span attribute given a value browsers read as 1 (or clamp)."""
    value = rng.choice(hostile.SPAN_VALUES)
    encoded = value.encode("utf-8")
    found = list(_SPAN.finditer(data))
    if found and rng.random() < 0.7:
        match = rng.choice(found)
        replaced = match.group(1) + b'="' + encoded + b'"'
        damaged = data[: match.start()] + replaced + data[match.end() :]
    else:
        cells = list(_CELL.finditer(data)) or [None]
        match = rng.choice(cells)
        at = match.end() if match else 0
        attribute = rng.choice([b" colspan", b" rowspan"]) + b'="' + encoded + b'"'
        damaged = data[:at] + attribute + data[at:]
    return f"span={value[:12]!r}", damaged


_CHARSET = re.compile(rb"charset\s*=\s*[\"']?[A-Za-z0-9_\-]*", re.I)


def charsets(data: bytes, rng: random.Random) -> tuple[str, bytes, str | None]:
    """A declared charset swapped for another, in the page or in the HTTP header."""
    label = rng.choice(hostile.CHARSETS)
    if rng.random() < 0.3:
        return f"header-charset={label[:12]!r}", data, f"text/html; charset={label}"
    if _CHARSET.search(data):
        damaged = _CHARSET.sub(b"charset=" + label.encode("latin-1"), data, count=1)
    else:
        damaged = f'<meta charset="{label}">'.encode("latin-1") + data
    return f"charset={label[:12]!r}", damaged, None


def docx_xml(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """document.xml damaged inside a sound zip, so the XML reader meets the damage."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    xml = members["word/document.xml"]
    how = rng.choice(["truncate", "flip", "delete", "insert", "span"])
    if how == "span":
        value = rng.choice(hostile.SPAN_VALUES).encode("utf-8")
        xml = re.sub(
            rb'(w:gridSpan|w:gridBefore) w:val="[^"]*"',
            lambda m: m.group(1) + b' w:val="' + value + b'"',
            xml,
            count=rng.randint(1, 5),
        )
    else:
        name, xml = {
            "truncate": truncate,
            "flip": bit_flips,
            "delete": deletions,
            "insert": insertions,
        }[how](xml, rng)
        how = name
    members["word/document.xml"] = xml
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return f"xml-{how}", buffer.getvalue()


BYTE_DAMAGE = [truncate, bit_flips, insertions, deletions]


def damaged(fixture: Fixture, rng: random.Random, number: int) -> Case:
    """One damaged copy of a fixture."""
    content_type = None
    choices: list = list(BYTE_DAMAGE)
    if fixture.kind == "html":
        choices += [spans, spans, charsets, charsets]
    elif fixture.kind == "docx":
        choices += [docx_xml, docx_xml, docx_xml]
    damage = rng.choice(choices)
    made = damage(fixture.data, rng)
    how, data = made[0], made[1]
    if len(made) == 3:
        content_type = made[2]
    url = f"https://example.gov.cn/{number}/{fixture.name}"
    return Case(f"{fixture.name}~{how}#{number}", data, url, content_type)


def fixtures() -> list[Fixture]:
    found = [
        Fixture(path.name, path.suffix[1:], path.read_bytes())
        for path in sorted(REPORTS.iterdir())
        if path.suffix[1:] in WEIGHTS
    ]
    found.append(Fixture("page.png", "png", _page_image()))
    return found


def _page_image() -> bytes:
    """Page 2 of the LibreOffice-made PDF at 100 dpi: a small scan of a table."""
    import pypdfium2

    document = pypdfium2.PdfDocument((REPORTS / "lo-word-2021-pdf.pdf").read_bytes())
    try:
        image = document[1].render(scale=100 / 72, grayscale=True).to_pil()
    finally:
        document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def cases(count: int, seed: int) -> list[Case]:
    """The crafted documents, then ``count`` less their number of damaged ones."""
    made = [
        Case(f"crafted:{name}", data, f"https://example.gov.cn/crafted/{name}")
        for name, data in hostile.crafted_documents().items()
    ]
    rng = random.Random(seed)
    found = fixtures()
    by_kind: dict[str, list[Fixture]] = {}
    for fixture in found:
        by_kind.setdefault(fixture.kind, []).append(fixture)
    kinds = [k for k in WEIGHTS if k in by_kind]
    weights = [WEIGHTS[k] for k in kinds]
    for number in range(max(count - len(made), 0)):
        kind = rng.choices(kinds, weights)[0]
        made.append(damaged(rng.choice(by_kind[kind]), rng, number))
    return made


# -- running each in a child of its own ----------------------------------------------


def _child(case: Case, write, memory_limit: int) -> None:
    """Parse in the forked child; write one JSON line; never return."""
    os.setpgid(0, 0)
    # A SIGTERM unwinds the parse (tools are killed by their finally) instead of
    # leaving LibreOffice or Tesseract running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    limit = memory_limit * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.perf_counter()
    try:
        report = parse_report(case.data, url=case.url, content_type=case.content_type)
        status = report.status
        detail = "" if status in STATUSES else f"invalid status {status!r}"
        result = {"kind": "ok" if not detail else "exception", "status": status}
    except MemoryError:
        result, detail = {"kind": "memory", "status": None}, "MemoryError"
    except BaseException as error:  # everything that escapes is what we count
        frames = traceback.extract_tb(error.__traceback__)[-3:]
        where = " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames[::-1])
        detail = f"{type(error).__name__}: {str(error)[:200]} at {where}"
        result = {"kind": "exception", "status": None}
    result["seconds"] = time.perf_counter() - started
    result["detail"] = detail
    os.write(write, (json.dumps(result) + "\n").encode())
    os._exit(0)


@dataclass
class _Running:
    case: Case
    pid: int
    read: int
    started: float
    terminated: bool = False


def run(cases: list[Case], jobs: int, time_limit: float, memory_limit: int):
    """Every case through parse_report in a forked child; yields Outcomes as they end."""
    pending = list(reversed(cases))
    running: dict[int, _Running] = {}
    while pending or running:
        while pending and len(running) < jobs:
            case = pending.pop()
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read)
                _child(case, write, memory_limit)
            os.close(write)
            running[pid] = _Running(case, pid, read, time.monotonic())
        pid, wait_status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for child in running.values():
                elapsed = now - child.started
                if elapsed > time_limit and not child.terminated:
                    os.kill(child.pid, signal.SIGTERM)
                    child.terminated = True
                elif elapsed > time_limit + 10:
                    os.killpg(child.pid, signal.SIGKILL)
            time.sleep(0.005)
            continue
        child = running.pop(pid)
        seconds = time.monotonic() - child.started
        with os.fdopen(child.read, "rb") as pipe:
            line = pipe.read().decode("utf-8", "replace").strip()
        yield _outcome(child, line, wait_status, usage, seconds)


def _outcome(child: _Running, line: str, wait_status: int, usage, seconds: float):
    if child.terminated:
        return Outcome(
            child.case, "over_time", seconds, usage.ru_maxrss, None, "over the limit"
        )
    if not line:
        signal_number = os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else 0
        return Outcome(
            child.case,
            "died",
            seconds,
            usage.ru_maxrss,
            None,
            f"exit status {os.waitstatus_to_exitcode(wait_status)}"
            + (f" ({signal.Signals(signal_number).name})" if signal_number else ""),
        )
    result = json.loads(line)
    return Outcome(
        child.case,
        result["kind"],
        result["seconds"],
        usage.ru_maxrss,
        result["status"],
        result["detail"],
    )


# -- the summary ---------------------------------------------------------------------


def _kind_of(case: Case) -> str:
    if case.name.startswith("crafted:"):
        return "crafted"
    return case.name.split("~", 1)[0].rsplit(".", 1)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=240.0)
    parser.add_argument("--memory-limit", type=int, default=4096, help="MiB")
    parser.add_argument("--save", type=Path, help="write the failed inputs here")
    options = parser.parse_args()

    made = cases(options.inputs, options.seed)
    kinds = Counter(_kind_of(case) for case in made)
    print(
        f"{len(made)} inputs (seed {options.seed}): "
        + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common()),
        flush=True,
    )
    started = time.monotonic()
    outcomes: list[Outcome] = []
    for outcome in run(made, options.jobs, options.time_limit, options.memory_limit):
        outcomes.append(outcome)
        if outcome.kind != "ok":
            print(
                f"  {outcome.kind}: {outcome.case.name}: {outcome.detail}", flush=True
            )
        if len(outcomes) % 250 == 0:
            print(f"  … {len(outcomes)} done", flush=True)
    wall = time.monotonic() - started

    failed = [o for o in outcomes if o.kind != "ok"]
    by_kind = Counter(o.kind for o in outcomes)
    heaviest = max(outcomes, key=lambda o: o.max_rss_kib)
    slowest = sorted(outcomes, key=lambda o: o.seconds, reverse=True)[:8]
    print()
    print(
        f"inputs tried        {len(outcomes)} in {wall:.0f} s, {options.jobs} at a time"
    )
    print(f"exceptions          {by_kind['exception']}")
    print(
        f"over time           {by_kind['over_time']} (limit {options.time_limit:g} s)"
    )
    print(f"out of memory       {by_kind['memory']} (limit {options.memory_limit} MiB)")
    print(f"died otherwise      {by_kind['died']}")
    print(
        f"peak memory         {heaviest.max_rss_kib / 1024:.0f} MiB max RSS "
        f"({heaviest.case.name})"
    )
    over = [o for o in outcomes if o.seconds > 10]
    print(f"slower than 10 s    {len(over)}")
    print(
        "slowest             "
        + "; ".join(f"{o.seconds:.1f} s {o.case.name}" for o in slowest)
    )
    statuses = Counter(o.status for o in outcomes if o.status)
    print(
        "statuses            "
        + ", ".join(f"{s} {n}" for s, n in statuses.most_common())
    )
    if failed:
        print("failed inputs:")
        for outcome in failed:
            print(f"  {outcome.kind}: {outcome.case.name}: {outcome.detail}")
        if options.save:
            options.save.mkdir(parents=True, exist_ok=True)
            for n, outcome in enumerate(failed):
                safe = re.sub(r"[^\w.#~=-]+", "_", outcome.case.name)[:120]
                (options.save / f"{n:04d}-{safe}").write_bytes(outcome.case.data)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
