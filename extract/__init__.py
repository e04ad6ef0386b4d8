"""Extraction of government information disclosure annual reports into canonical frames."""

from extract.report import Report, parse_report

__all__ = ["Report", "parse_report"]
__version__ = "0.1.0"
