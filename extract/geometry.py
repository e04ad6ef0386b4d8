"""Boxes on a page into grid rows and text lines: the geometry the PDF reader and OCR share.

Both readers end in the same shapes. An atom (a PDF char, an OCR word) is a dict with
``text``, ``x0``, ``x1``, ``top`` and ``bottom`` (top-down coordinates, points or
pixels). A ruling is an edge: a dict with ``x0``, ``x1``, ``top``, ``bottom``, ``width``,
``height`` and ``orientation`` ("h" or "v").

- Rulings become cell boxes by pdfplumber's method, ported here with its tolerances and
  tie-breaks so that cells come out as they did when pdfplumber found them: edges near
  one another are snapped to their mean and joined end to end (``merge_edges``), their
  crossings found (``edges_to_intersections``), each crossing's smallest box whose four
  corners are joined by edges taken (``intersections_to_cells``), and boxes sharing a
  corner grouped into tables (``cells_to_tables``). The crossings come from sorted edges
  and bisection, not pdfplumber's every-edge-against-every-edge loops, so a page of
  rulings costs milliseconds; ``deadline`` (a ``time.monotonic`` value) bounds the work
  on a page drawn to defeat that.
- Cell boxes and atoms become grid rows (``grid_rows``); atoms outside every table
  become text lines (``text_lines``); page items become a ``Layout`` (``assemble``).
"""

from __future__ import annotations

import bisect
import itertools
import time
from operator import itemgetter

from extract.layout import Cell, Layout, text_layout

SNAP = 2.0  # points: boundaries closer than this are one grid line


class RulingsTimeoutError(Exception):
    """Finding the tables of a page's rulings ran past its deadline."""


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise RulingsTimeoutError


# -- rulings to cell boxes (pdfplumber's table finder, "lines" strategy) -------------


def _snap_group(edges: list[dict], key: str, tolerance: float) -> list[dict]:
    """Edges whose ``key`` values chain within ``tolerance`` moved to their mean."""
    if tolerance <= 0 or len(edges) < 2:
        return edges
    values = sorted({e[key] for e in edges})
    cluster_of: dict[float, int] = {}
    cluster = 0
    for previous, value in zip([values[0], *values], values, strict=False):
        if value > previous + tolerance:
            cluster += 1
        cluster_of[value] = cluster
    grouped = sorted(edges, key=lambda e: cluster_of[e[key]])
    out = []
    for _, group in itertools.groupby(grouped, key=lambda e: cluster_of[e[key]]):
        members = list(group)
        mean = sum(e[key] for e in members) / len(members)
        for edge in members:
            moved = dict(edge)
            shift = mean - edge[key]
            if key == "x0":
                moved["x0"] += shift
                moved["x1"] += shift
            else:
                moved["top"] += shift
                moved["bottom"] += shift
            out.append(moved)
    return out


def _join_group(edges: list[dict], orientation: str, tolerance: float) -> list[dict]:
    """Edges on one line joined where they touch or are within ``tolerance``."""
    low, high = ("x0", "x1") if orientation == "h" else ("top", "bottom")
    ordered = sorted(edges, key=itemgetter(low))
    joined = [ordered[0]]
    for edge in ordered[1:]:
        last = joined[-1]
        if edge[low] <= last[high] + tolerance:
            if edge[high] > last[high]:
                # pdfplumber's arithmetic, so lengths at the 3 pt cut agree to the bit
                last = dict(last)
                if orientation == "h":
                    last["width"] = edge["x1"] - last["x0"]
                else:
                    last["height"] += edge["bottom"] - last["bottom"]
                last[high] = edge[high]
                joined[-1] = last
        else:
            joined.append(edge)
    return joined


def merge_edges(
    edges: list[dict],
    snap_x_tolerance: float,
    snap_y_tolerance: float,
    join_x_tolerance: float,
    join_y_tolerance: float,
) -> list[dict]:
    """Edges snapped to shared lines and joined along them."""
    if snap_x_tolerance > 0 or snap_y_tolerance > 0:
        edges = _snap_group(
            [e for e in edges if e["orientation"] == "v"], "x0", snap_x_tolerance
        ) + _snap_group(
            [e for e in edges if e["orientation"] == "h"], "top", snap_y_tolerance
        )

    def line_of(edge: dict) -> tuple[str, float]:
        return ("h", edge["top"]) if edge["orientation"] == "h" else ("v", edge["x0"])

    out: list[dict] = []
    for (orientation, _), group in itertools.groupby(
        sorted(edges, key=line_of), key=line_of
    ):
        tolerance = join_x_tolerance if orientation == "h" else join_y_tolerance
        out.extend(_join_group(list(group), orientation, tolerance))
    return out


def filter_edges(
    edges: list[dict], orientation: str | None = None, min_length: float = 1
) -> list[dict]:
    """Edges of one orientation (or any) at least ``min_length`` long."""
    return [
        e
        for e in edges
        if (orientation is None or e["orientation"] == orientation)
        and e["height" if e["orientation"] == "v" else "width"] >= min_length
    ]


def edges_to_intersections(
    edges: list[dict],
    x_tolerance: float = 1,
    y_tolerance: float = 1,
    deadline: float | None = None,
) -> dict[tuple[float, float], dict[str, list[dict]]]:
    """The points where a vertical and a horizontal edge cross, within the tolerances,
    with the edges that meet there."""
    vertical = sorted(
        (e for e in edges if e["orientation"] == "v"), key=itemgetter("x0", "top")
    )
    horizontal = sorted(
        (e for e in edges if e["orientation"] == "h"), key=itemgetter("top", "x0")
    )
    tops = [h["top"] for h in horizontal]
    intersections: dict[tuple[float, float], dict[str, list[dict]]] = {}
    for n, v in enumerate(vertical):
        if n % 256 == 0:
            _check(deadline)
        first = bisect.bisect_left(tops, v["top"] - y_tolerance)
        last = bisect.bisect_right(tops, v["bottom"] + y_tolerance)
        x = v["x0"]
        for h in horizontal[first:last]:
            if h["x0"] - x_tolerance <= x <= h["x1"] + x_tolerance:
                found = intersections.setdefault((x, h["top"]), {"v": [], "h": []})
                found["v"].append(v)
                found["h"].append(h)
    return intersections


def _bbox(edge: dict) -> tuple[float, float, float, float]:
    return (edge["x0"], edge["top"], edge["x1"], edge["bottom"])


def intersections_to_cells(
    intersections: dict[tuple[float, float], dict[str, list[dict]]],
    deadline: float | None = None,
) -> list[tuple[float, float, float, float]]:
    """For each crossing, top left first, the smallest box to its lower right whose
    corners are crossings joined by edges along its sides."""
    points = sorted(intersections)
    v_edges = {p: {_bbox(e) for e in intersections[p]["v"]} for p in points}
    h_edges = {p: {_bbox(e) for e in intersections[p]["h"]} for p in points}
    by_x: dict[float, list[tuple[float, float]]] = {}
    by_y: dict[float, list[tuple[float, float]]] = {}
    for point in points:  # sorted, so each list runs down (by_x) or right (by_y)
        by_x.setdefault(point[0], []).append(point)
        by_y.setdefault(point[1], []).append(point)

    def connects(p1: tuple[float, float], p2: tuple[float, float]) -> bool:
        if p1[0] == p2[0] and not v_edges[p1].isdisjoint(v_edges[p2]):
            return True
        return p1[1] == p2[1] and not h_edges[p1].isdisjoint(h_edges[p2])

    cells = []
    for n, point in enumerate(points):
        if n % 64 == 0:
            _check(deadline)
        column, row = by_x[point[0]], by_y[point[1]]
        below = column[bisect.bisect_right(column, point) :]
        right = row[bisect.bisect_right(row, point) :]
        found = None
        for below_point in below:
            if not connects(point, below_point):
                continue
            for right_point in right:
                if not connects(point, right_point):
                    continue
                corner = (right_point[0], below_point[1])
                if (
                    corner in intersections
                    and connects(corner, right_point)
                    and connects(corner, below_point)
                ):
                    found = (point[0], point[1], corner[0], corner[1])
                    break
            if found:
                break
        if found:
            cells.append(found)
    return cells


def cells_to_tables(
    cells: list[tuple[float, float, float, float]], deadline: float | None = None
) -> list[list[tuple[float, float, float, float]]]:
    """Cells grouped into tables of cells that share corners, top to bottom; a lone
    cell is no table. Each table keeps pdfplumber's order of its cells."""

    def corners(cell: tuple[float, float, float, float]) -> tuple:
        x0, top, x1, bottom = cell
        return ((x0, top), (x0, bottom), (x1, top), (x1, bottom))

    remaining = list(cells)
    tables = []
    while remaining:
        _check(deadline)
        table = [remaining[0]]
        seen = set(corners(remaining[0]))
        remaining = remaining[1:]
        # Sweep the rest in order until a sweep adds nothing, as pdfplumber does.
        while True:
            kept = []
            for cell in remaining:
                cell_corners = corners(cell)
                if any(c in seen for c in cell_corners):
                    seen.update(cell_corners)
                    table.append(cell)
                else:
                    kept.append(cell)
            if len(kept) == len(remaining):
                break
            remaining = kept
        tables.append(table)
    tables.sort(key=lambda t: min((c[1], c[0]) for c in t))
    return [t for t in tables if len(t) > 1]


def table_boxes(
    edges: list[dict], deadline: float | None = None
) -> list[list[tuple[float, float, float, float]]]:
    """The cell boxes of each table the rulings draw (pdfplumber's ``find_tables`` with
    the "lines" strategies and its default tolerances: 3 to snap, join and cross)."""
    base = filter_edges(edges, "v") + filter_edges(edges, "h")
    merged = filter_edges(merge_edges(base, 3, 3, 3, 3), min_length=3)
    intersections = edges_to_intersections(merged, 3, 3, deadline)
    return cells_to_tables(intersections_to_cells(intersections, deadline), deadline)


# -- cell boxes and atoms to rows and lines ------------------------------------------


def _snap(values: list[float]) -> list[float]:
    """Sorted boundaries with near-duplicates merged."""
    out: list[float] = []
    for v in sorted(values):
        if not out or v - out[-1] > SNAP:
            out.append(v)
    return out


def _index(bounds: list[float], value: float) -> int:
    i = bisect.bisect_left(bounds, value - SNAP)
    return min(i, len(bounds) - 1)


def _join_cell_text(atoms: list[dict]) -> str:
    """The text of a cell's chars (or OCR words): lines top to bottom, joined."""
    if not atoms:
        return ""
    lines = _group_lines(atoms)
    texts = [
        _line_text(sorted(line, key=lambda a: a["x0"]), wide=False) for line in lines
    ]
    out = texts[0]
    for text in texts[1:]:
        if (
            out
            and text
            and out[-1].isascii()
            and out[-1].isalnum()
            and text[0].isascii()
        ):
            out += " " + text
        else:
            out += text
    return out.strip()


def _group_lines(atoms: list[dict]) -> list[list[dict]]:
    """Atoms grouped into lines: an atom whose vertical centre falls inside a line's
    band joins it (OCR boxes of one line differ in height and top)."""
    lines: list[list[dict]] = []
    bands: list[list[float]] = []
    for atom in sorted(atoms, key=lambda a: (a["top"] + a["bottom"]) / 2):
        centre = (atom["top"] + atom["bottom"]) / 2
        for band, line in zip(reversed(bands[-3:]), reversed(lines[-3:]), strict=True):
            if band[0] <= centre <= band[1]:
                line.append(atom)
                break
        else:
            lines.append([atom])
            bands.append([atom["top"], atom["bottom"]])
    return lines


def _line_text(atoms: list[dict], wide: bool) -> str:
    """Chars of one line; a gap of a char's width is a space, of two (``wide``) a field."""
    out = ""
    previous = None
    for atom in atoms:
        if previous is not None:
            size = max(atom["bottom"] - atom["top"], 1.0)
            gap = atom["x0"] - previous["x1"]
            if wide and gap > 1.6 * size:
                out += "  "
            elif (
                gap > 0.45 * size
                and (atom["text"][:1].isascii() or previous["text"][-1:].isascii())
                or gap > 1.0 * size
            ):
                out += " "
        out += atom["text"]
        previous = atom
    return out


def grid_rows(
    boxes: list[tuple[float, float, float, float]], atoms: list[dict]
) -> tuple[list[list[Cell]], list[dict]]:
    """Rows of grid cells from cell boxes (x0, top, x1, bottom); atoms not inside any
    box are returned. A box covering several rows is repeated with ``carried``."""
    xs = _snap([b[0] for b in boxes] + [b[2] for b in boxes])
    ys = _snap([b[1] for b in boxes] + [b[3] for b in boxes])
    placed: list[tuple[int, int, int, int]] = []
    for x0, top, x1, bottom in boxes:
        c0, c1 = _index(xs, x0), _index(xs, x1)
        r0, r1 = _index(ys, top), _index(ys, bottom)
        if c1 > c0 and r1 > r0:
            placed.append((r0, r1, c0, c1))
    owner: dict[tuple[int, int], int] = {}
    for n, (r0, r1, c0, c1) in enumerate(placed):
        for r in range(r0, r1):
            for c in range(c0, c1):
                owner.setdefault((r, c), n)
    texts: list[list[dict]] = [[] for _ in placed]
    outside: list[dict] = []
    for atom in atoms:
        cx = (atom["x0"] + atom["x1"]) / 2
        cy = (atom["top"] + atom["bottom"]) / 2
        c = bisect.bisect_right(xs, cx) - 1
        r = bisect.bisect_right(ys, cy) - 1
        inside = 0 <= c < len(xs) - 1 and 0 <= r < len(ys) - 1
        box = owner.get((r, c)) if inside else None
        if box is None:
            outside.append(atom)
        else:
            texts[box].append(atom)
    joined = [_join_cell_text(t) for t in texts]
    rows: dict[int, list[Cell]] = {}
    for n, (r0, r1, c0, c1) in enumerate(placed):
        for r in range(r0, r1):
            rows.setdefault(r, []).append(Cell(joined[n], c0, c1 - c0, r > r0))
    ordered = []
    for r in sorted(rows):
        row = sorted(rows[r], key=lambda cell: cell.col)
        if any(cell.text for cell in row):
            ordered.append(row)
    return ordered, outside


def text_lines(atoms: list[dict]) -> list[tuple[float, str]]:
    """Atoms grouped into lines (top, text), wide gaps kept as two spaces."""
    lines = _group_lines(atoms)
    out = []
    for line in lines:
        line.sort(key=lambda a: a["x0"])
        text = _line_text(line, wide=True).strip()
        if text:
            out.append((min(a["top"] for a in line), text))
    out.sort(key=lambda item: item[0])
    return out


def assemble(items: list[tuple[str, object]]) -> Layout:
    """Page items ("line", text) / ("table", Table) in reading order, into a Layout."""
    layout = Layout()
    pending: list[str] = []

    def flush() -> None:
        if pending:
            layout.blocks.extend(text_layout("\n".join(pending)).blocks)
            pending.clear()

    for kind, value in items:
        if kind == "line":
            pending.append(value)  # type: ignore[arg-type]
        else:
            flush()
            layout.blocks.append(value)  # type: ignore[arg-type]
    flush()
    return layout
