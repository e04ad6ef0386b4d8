"""The dataset out of Parquet: CSV, Excel, Stata and JSON Lines, with a bilingual dictionary.

Every export holds the long tables as they are in the dataset and ``reports_wide``: one
row per report with one variable per cell of tables 二, 三 and 四, named so that Stata
and R accept them (``app_new_received_total``: table, row and column short names from
``extract/labels/export_names.csv``, at most 32 characters) and labelled in Chinese.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from extract.catalogue import TABLES, short_names, table_catalogue
from extract.dataset.package import PACKAGE_FILE
from extract.loader import current_version, load
from extract.schema import COLUMN_LABELS_ZH, DATASET_TABLES

FORMATS = ("csv", "xlsx", "dta", "jsonl")
LONG_TABLES = (
    "reports", "agencies", *TABLES, "checks", "cross_year_checks", "sections",
)  # fmt: skip
WIDE = "reports_wide"
# The identifying columns of a report kept in front of the wide table's cells.
WIDE_KEYS = ("agency_id", "year", "agency", "agency_kind", "district",
             "division_code", "status", "title", "url")  # fmt: skip
VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_EXCEL_CELL = 32_767  # characters an Excel cell holds
_STATA_LABEL = 80  # characters of a Stata variable label


class ExportError(RuntimeError):
    """The export cannot be written where it was asked to go."""


@dataclass(frozen=True)
class Variable:
    """One variable of an export, for the dictionary and the Stata labels."""

    table: str
    name: str
    label_zh: str
    description: str


def wide_name(table: str, row: str, column: str) -> str:
    """The Stata/R name of one cell: ``<table>_<row>_<column>`` in short names."""
    short = short_names()
    return f"{short[(table, 'table')]}_{short[(table, row)]}_{short[(table, column)]}"


def _label(table: str, code: str) -> str:
    for entry in table_catalogue(table).entries:
        if entry.code == code:
            return entry.label_zh
    return code


def wide_label(table: str, row: str, column: str) -> str:
    """The Chinese label of one cell: table, row and column as the template prints them."""
    number = table_catalogue(table).spec.number
    return f"表{number} {_label(table, row)}｜{_label(table, column)}"


def _wide(frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[Variable]]:
    reports = frames["reports"][list(WIDE_KEYS)].copy()
    variables, parts = [], []
    for table in TABLES:
        cells = frames[table]
        if cells.empty:
            continue
        rows, columns = cells["row"].astype(str), cells["column"].astype(str)
        pairs = dict.fromkeys(zip(rows, columns, strict=True))
        names = {pair: wide_name(table, *pair) for pair in pairs}
        keyed = cells.assign(
            variable=[names[p] for p in zip(rows, columns, strict=True)],
            agency_id=cells["agency_id"].astype(str),
        )
        # Template order (first appearance), not the pivot's alphabetical order.
        order = [names[p] for p in pairs]
        parts.append(
            keyed.pivot(
                index=["agency_id", "year"], columns="variable", values="value"
            ).reindex(columns=order)
        )
        variables += [
            Variable(WIDE, names[p], wide_label(table, *p), f"{table} {p[0]} × {p[1]}")
            for p in pairs
        ]
    reports["agency_id"] = reports["agency_id"].astype(str)
    wide = reports
    for part in parts:
        wide = wide.merge(part.reset_index(), on=["agency_id", "year"], how="left")
    return wide, variables


def _table_variables(table: str) -> list[Variable]:
    columns = [*DATASET_TABLES[table]]
    if table not in ("agencies", "cross_year_checks"):
        names = [c.name for c in columns]
        year = next(
            c for cols in DATASET_TABLES.values() for c in cols if c.name == "year"
        )
        if "year" not in names:
            columns.append(year)
    return [
        Variable(table, c.name, COLUMN_LABELS_ZH.get(c.name, ""), c.description)
        for c in columns
    ]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as strings and lists joined: what every export format can hold."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.astype("string")
        elif (
            column.dtype == object
            and column.map(lambda v: isinstance(v, list | tuple)).any()
        ):
            out[name] = column.map(
                lambda v: "; ".join(v) if isinstance(v, list | tuple) else v
            ).astype("string")
    return out


def export(
    out: Path,
    output_format: str,
    *,
    tables: Iterable[str] = (),
    year=None,
    district=None,
    data_dir: Path | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the chosen tables (all by default) and ``reports_wide``; returns the files."""
    if output_format not in FORMATS:
        raise ExportError(
            f"unknown format {output_format!r}; one of {', '.join(FORMATS)}"
        )
    chosen = list(tables) or [*LONG_TABLES, WIDE]
    for table in chosen:
        if table not in (*LONG_TABLES, WIDE):
            raise ExportError(
                f"unknown table {table!r}; one of {', '.join((*LONG_TABLES, WIDE))}"
            )
    _prepare(out, overwrite)
    needed = set(chosen) | ({"reports", *TABLES} if WIDE in chosen else set())
    frames = {
        table: load(table, year=year if table != "agencies" else None,
                    district=district, data_dir=data_dir)
        for table in LONG_TABLES if table in needed
    }  # fmt: skip
    variables = [v for t in chosen if t != WIDE for v in _table_variables(t)]
    if WIDE in chosen:
        frames[WIDE], wide_variables = _wide(frames)
        variables += [
            Variable(WIDE, name, COLUMN_LABELS_ZH.get(name, ""), "")
            for name in WIDE_KEYS
        ] + wide_variables
    about = _about(data_dir)
    written = _write(
        out, output_format, {t: _plain(frames[t]) for t in chosen}, variables, about
    )
    path = out / "ABOUT.txt"
    path.write_text(
        f"{about['title']}\nversion {about['version']}\n\n{about['description']}\n\n"
        "Variables, Chinese labels and English descriptions: the dictionary file.\n",
        encoding="utf-8",
    )
    return [*written, path]


def _about(data_dir: Path | str | None) -> dict:
    """Title, version and description of the dataset (from its datapackage.json)."""
    package = current_version(data_dir) / PACKAGE_FILE
    if package.exists():
        return json.loads(package.read_text(encoding="utf-8"))
    return {"title": "nianbao", "version": "unknown", "description": ""}


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; choose another path or pass --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".nianbao-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ExportError(
            f"cannot write to {out}: {error.strerror or error}"
        ) from error


def dictionary(variables: list[Variable]) -> pd.DataFrame:
    """The data dictionary: table, variable, Chinese label, English description."""
    return pd.DataFrame(
        [(v.table, v.name, v.label_zh, v.description) for v in variables],
        columns=["table", "variable", "label_zh", "description_en"],
    )


def _write(
    out: Path,
    output_format: str,
    frames: dict[str, pd.DataFrame],
    variables: list[Variable],
    about: dict,
) -> list[Path]:
    written = []
    book = dictionary(variables)
    if output_format == "csv":
        for table, frame in {**frames, "dictionary": book}.items():
            path = out / f"{table}.csv"
            # UTF-8 with a byte-order mark: Excel opens it with the Chinese intact.
            frame.to_csv(path, index=False, encoding="utf-8-sig")
            written.append(path)
    elif output_format == "jsonl":
        for table, frame in {**frames, "dictionary": book}.items():
            path = out / f"{table}.jsonl"
            frame.to_json(path, orient="records", lines=True, force_ascii=False)
            written.append(path)
    elif output_format == "xlsx":
        path = out / "nianbao.xlsx"
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            for table, frame in frames.items():
                _excel_safe(frame).to_excel(writer, sheet_name=table[:31], index=False)
            book.to_excel(writer, sheet_name="dictionary", index=False)
        written.append(path)
    else:
        for table, frame in frames.items():
            path = out / f"{table}.dta"
            labels = {
                v.name: (v.label_zh or v.description)[:_STATA_LABEL]
                for v in variables
                if v.table == table and v.name in frame.columns
            }
            _stata_safe(frame).to_stata(
                path, write_index=False, version=118, variable_labels=labels,
                data_label=about["title"][:_STATA_LABEL],
            )  # fmt: skip
            written.append(path)
        path = out / "dictionary.csv"
        book.to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    return written


def _is_text(dtype) -> bool:
    return isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype)


def _excel_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for name in out.columns:
        if _is_text(out[name].dtype):
            out[name] = out[name].map(
                lambda v: v[:_EXCEL_CELL] if isinstance(v, str) else v
            )
    return out


def _stata_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Stata has no nullable booleans or strings: booleans as 0/1, missing text empty."""
    out = frame.copy()
    for name in out.columns:
        dtype = out[name].dtype
        if dtype == "boolean":
            out[name] = out[name].astype("Float64").astype("float64")
        elif _is_text(dtype):
            out[name] = out[name].astype("string").fillna("").astype(object)
        elif str(dtype) in ("Int64", "Float64", "Int32"):
            out[name] = out[name].astype("float64")
    return out
