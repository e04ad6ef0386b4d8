"""Extraction of government information disclosure annual reports into canonical frames.

``parse_report`` reads one report (bytes in, ``Report`` out); ``load`` and its kin read the
published Parquet dataset as pandas frames or Arrow tables.
"""

from __future__ import annotations

from extract.loader import load, load_applications_wide, load_arrow
from extract.report import Report, parse_report

__all__ = ["Report", "load", "load_applications_wide", "load_arrow", "parse_report"]
