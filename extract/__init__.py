"""Extraction of government information disclosure annual reports into canonical frames."""

from extract.load import load, load_applications_wide, load_arrow
from extract.report import Report, parse_report

__all__ = ["Report", "load", "load_applications_wide", "load_arrow", "parse_report"]
__version__ = "0.1.0"
