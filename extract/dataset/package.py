"""datapackage.json: the dataset described as a Frictionless Data Package, in each version.

Fields, types, Chinese and English descriptions and primary keys come from
``extract.schema``; the resources list the version's Parquet files, so any Frictionless
tool (and a person) can see what each file holds without opening it.
"""

from __future__ import annotations

import json
from pathlib import Path

from extract.catalogue import TABLES
from extract.schema import COLUMN_LABELS_ZH, DATASET_TABLES, Column
from nianbao_common.storage import RemotePath

PACKAGE_FILE = "datapackage.json"
_TYPES = {
    "string": "string",
    "Float64": "number",
    "Int64": "integer",
    "boolean": "boolean",
    # Frictionless reads a Parquet list as a value it cannot check as a JSON array.
    "list<string>": "any",
}
# Each table's rows are unique by these columns (year comes from the partition path).
# Every table of the template is keyed by its cell; the others by what they describe.
PRIMARY_KEYS = dict.fromkeys(TABLES, ["agency_id", "year", "row", "column"]) | {
    "reports": ["agency_id", "year"],
    "agencies": ["agency_id"],
    "checks": ["agency_id", "year", "check", "subject"],
    "cross_year_checks": ["agency_id", "year", "column"],
    "sections": ["agency_id", "year", "section"],
}


def _field(column: Column) -> dict:
    return {
        "name": column.name,
        "type": _TYPES[column.dtype],
        "nianbao_dtype": column.dtype,
        "title": COLUMN_LABELS_ZH.get(column.name, column.name),
        "description": column.description,
        "description_zh": COLUMN_LABELS_ZH.get(column.name, ""),
    }


def _relative(path: Path | RemotePath, root: Path | RemotePath) -> str:
    """``path`` below ``root`` (both on disk or both in object storage), POSIX style."""
    if isinstance(path, RemotePath) and isinstance(root, RemotePath):
        return path.relative_to(root).as_posix()
    if isinstance(path, Path) and isinstance(root, Path):
        return path.relative_to(root).as_posix()
    raise TypeError(f"{path} and {root} are not in the same storage")


def package_descriptor(
    version_dir: Path | RemotePath, *, version: str, synthetic: bool
) -> dict:
    """The Data Package descriptor of a version directory."""
    resources = []
    for table, columns in DATASET_TABLES.items():
        # One resource per file: a year file holds no year column (the path gives it),
        # so its rows are keyed without the year.
        files: list[Path | RemotePath] = sorted(
            (version_dir / table).rglob("*.parquet")
        )
        for path in files:
            partition = path.parent.name
            year = (
                int(partition.split("=", 1)[1])
                if partition.startswith("year=")
                else None
            )
            resources.append(
                {
                    "name": f"{table}-{year}" if year else table,
                    "path": _relative(path, version_dir),
                    "format": "parquet",
                    "mediatype": "application/vnd.apache.parquet",
                    "nianbao_table": table,
                    **({"nianbao_year": year} if year else {}),
                    "schema": {
                        "fields": [_field(c) for c in columns],
                        "primaryKey": [
                            k for k in PRIMARY_KEYS[table] if k != "year" or not year
                        ],
                    },
                }
            )
    title = "政府信息公开工作年度报告数据 (nianbao)"
    return {
        "name": "nianbao",
        "title": title + (" — SYNTHETIC DEMO DATA" if synthetic else ""),
        "description": (
            "The statistical tables of Chinese government information disclosure "
            "annual reports (政府信息公开工作年度报告), under stable codes, with the "
            "template's identities checked. "
            + (
                "These numbers are synthetic: the demo snapshot, not real reports."
                if synthetic
                else "Extracted from the reports as the agencies published them."
            )
        ),
        "version": version,
        "licenses": [
            {
                "name": "CC-BY-4.0",
                "path": "https://creativecommons.org/licenses/by/4.0/",
                "title": "Creative Commons Attribution 4.0 (the dataset); the reports "
                "are public government information",
            }
        ],
        "sources": [
            {
                "title": "政府信息公开工作年度报告 published by each agency (see "
                "reports.url, the archived page, and reports.source_url)"
            }
        ],
        "nianbao_synthetic": synthetic,
        "resources": resources,
    }


def write_package(
    version_dir: Path | RemotePath, *, version: str, synthetic: bool
) -> Path | RemotePath:
    """Write datapackage.json into a version directory."""
    path = version_dir / PACKAGE_FILE
    descriptor = package_descriptor(version_dir, version=version, synthetic=synthetic)
    path.write_text(json.dumps(descriptor, ensure_ascii=False, indent=1), "utf-8")
    return path
