"""Extraction of government information disclosure annual reports into canonical frames.

The public names load on first use: the crawler imports ``extract.decode`` alone, and
pandas (which ``extract.loader`` and ``extract.report`` import) would otherwise cost it
~0.7 s at start and a larger heap for every garbage collection of the crawl to walk.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from extract.loader import load, load_applications_wide, load_arrow
    from extract.report import Report, parse_report

_HOMES = {
    "Report": "extract.report",
    "parse_report": "extract.report",
    "load": "extract.loader",
    "load_applications_wide": "extract.loader",
    "load_arrow": "extract.loader",
}
__all__ = ["Report", "load", "load_applications_wide", "load_arrow", "parse_report"]
__version__ = version("nianbao")


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'extract' has no attribute {name!r}")
    return getattr(import_module(home), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
