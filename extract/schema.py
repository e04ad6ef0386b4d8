"""The schema of every frame the extractor returns, as data; docs/schema.md is rendered from it."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd
from pandas.api.types import pandas_dtype

from extract.catalogue import (
    FORMATS,
    TABLES,
    agency_kinds,
    sections,
    table_catalogue,
    table_specs,
)
from extract.checks import IDENTITIES
from extract.problems import problem_codes


def _same_in_all_formats(table: str) -> bool:
    """Whether every label of a table prints in every format (table 四): no format shows."""
    return all(len(e.formats) == len(FORMATS) for e in table_catalogue(table).entries)


_SAME_IN_ALL_FORMATS = [t for t in TABLES if _same_in_all_formats(t)]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an output frame."""

    name: str
    dtype: str
    description: str


CELL_COLUMNS = (
    Column("row", "string", "Canonical row code (see the table's codes below)."),
    Column("column", "string", "Canonical column code."),
    Column(
        "row_label",
        "string",
        "Official Chinese label of the row in the detected format.",
    ),
    Column("column_label", "string", "Official Chinese label of the column."),
    Column("printed_row_label", "string", "The row label as the report printed it."),
    Column(
        "printed_column_label", "string", "The column label as the report printed it."
    ),
    Column("raw", "string", "The cell text as printed, whitespace collapsed."),
    Column(
        "value",
        "Float64",
        "The number read from `raw` (see *Cell values*); null when none.",
    ),
    Column(
        "marker",
        "string",
        "How `raw` was read: number, blank, dash, slash, none_word, unparsed.",
    ),
    Column(
        "unit",
        "string",
        "Money columns only: the unit the value was converted to 万元 from.",
    ),
    Column(
        "is_ocr", "boolean", "True when the cell was read by OCR from a scan or image."
    ),
    Column(
        "matched_by",
        "string",
        "How the cell's row was found: label (its printed label is a template label "
        "or variant) or sequence (a misprinted label no template label matches, placed "
        "by the template's row order between two matched neighbours, the one row left "
        "there and alike in wording; a problem names it) or split (its value was "
        "cut from a run of digits printed without separators, the one cut the "
        "row's identities admit; a problem names it).",
    ),
)

CHECK_COLUMNS = (
    Column("check", "string", "Identity name (see *Checks*)."),
    Column("table", "string", "Table the identity is evaluated on."),
    Column(
        "subject", "string", "The column, row or group the identity is evaluated for."
    ),
    Column("expected", "Float64", "Sum of the parts as printed (blank parts count 0)."),
    Column("found", "Float64", "The printed total the sum is compared with."),
    Column(
        "status",
        "string",
        "pass, fail, incomplete (a total or cell missing) or empty (all blank).",
    ),
)

REPORT_FIELDS = (
    Column("url", "string", "Where the document came from, when the caller knows."),
    Column("sha256", "string", "SHA-256 of the document bytes as given."),
    Column(
        "title", "string", "The report title as printed (page <title> or first lines)."
    ),
    Column("agency", "string", "The reporting agency as printed in the title."),
    Column("year", "Int64", "The report year, from the title (never from the URL)."),
    Column(
        "publish_date",
        "string",
        "ISO date after 发布日期/发布时间, else the signature date at the end.",
    ),
    Column(
        "source_format",
        "string",
        "html, text, or the binary kind sniffed (pdf, zip, ole, image, binary).",
    ),
    Column(
        "encoding",
        "string",
        "The codec the text was decoded with (utf-8, gb18030, …). A page cut off inside a "
        "character, or a UTF-8 or GBK page with a few stray bytes, keeps its codec: the "
        "bad bytes read as U+FFFD.",
    ),
    Column(
        "declared_encoding",
        "string",
        "The charset the HTTP header or <meta> declared, if any.",
    ),
    Column(
        "formats",
        "object",
        "Template format per table: 2019, 2021, or null (undetected; always null for "
        f"{', '.join(_SAME_IN_ALL_FORMATS)}, which is the same in both).",
    ),
    Column("status", "string", "See *Report status*."),
    Column(
        "problems",
        "object",
        "Every table missing, label unmatched and value unplaced, as text (see "
        "*Problems*).",
    ),
    Column(
        "problem_codes",
        "object",
        "The code of each entry of `problems`, in the same order (see *Problems*).",
    ),
    Column(
        "source_url",
        "string",
        "The document the tables were read from (an attachment, or the page).",
    ),
    Column(
        "page_url",
        "string",
        "The report page that linked the attachment, when they differ.",
    ),
    Column(
        "ocr", "boolean", "Whether any table was read by OCR (see the cells' `is_ocr`)."
    ),
)

KEY = Column("agency_id", "string", "Stable ASCII id of the agency (see *Agency ids*).")
YEAR_NOTE = (
    "Every table but `agencies` and `cross_year_checks` is partitioned by report year "
    "(`year=YYYY/` directories): readers add `year` from the path. `cross_year_checks` "
    "compares each agency's consecutive reports: what one year carried forward must be "
    "what the next carried over, per applicant column."
)

DATASET_TABLES: dict[str, tuple[Column, ...]] = {
    "reports": (
        KEY,
        Column("agency", "string", "Agency name, completed with city and district."),
        Column(
            "agency_kind",
            "string",
            "What the agency is (see *Agency kinds*): government, general_office, "
            "department, street, township, other; null when the name says nothing.",
        ),
        Column(
            "province",
            "string",
            "Province-level division (省、自治区、直辖市) of the site that published the "
            "report, from its declaration; null when unknown.",
        ),
        Column(
            "city",
            "string",
            "City (地级市, or the municipality) of the publishing site; null when unknown.",
        ),
        Column(
            "printed_agency",
            "string",
            "Agency name as the list page or the report printed it.",
        ),
        Column(
            "district",
            "string",
            "District (区) the agency belongs to; null for city agencies.",
        ),
        Column(
            "division_code",
            "string",
            "6-digit 行政区划代码 of the district (110000 for the city).",
        ),
        Column("site", "string", "Spider that archived the report."),
        Column("title", "string", "Report title as printed (or as listed)."),
        Column("url", "string", "Report page URL (the archive key)."),
        Column(
            "source_url",
            "string",
            "URL of the document the tables were read from (the page or an attachment).",
        ),
        Column(
            "source_sha256",
            "string",
            "SHA-256 of the archived document at `source_url`.",
        ),
        Column("publish_date", "string", "Publish date printed in the report, ISO."),
        Column(
            "fetched_at",
            "string",
            "When the archived bytes were fetched, ISO 8601 UTC.",
        ),
        Column("sha256", "string", "SHA-256 of the archived page bytes."),
        Column(
            "warc_file",
            "string",
            "WARC file holding the page record, relative to raw/.",
        ),
        Column("warc_offset", "Int64", "Byte offset of the record in the WARC file."),
        Column("record_id", "string", "WARC-Record-ID of the page record."),
        Column("source_format", "string", "html, text, pdf, docx, …"),
        Column(
            "ocr", "boolean", "Whether tables were read by OCR (cells carry `is_ocr`)."
        ),
        Column("encoding", "string", "Codec the text was decoded with."),
        *(
            Column(
                f"format_{spec.table}",
                "string",
                f"Always null: table {spec.number} is the same in both formats."
                if _same_in_all_formats(spec.table)
                else f"Template format of table {spec.number}: 2019, 2021 or null.",
            )
            for spec in table_specs()
        ),
        Column(
            "status",
            "string",
            "ok, checks_failed, partial, no_tables, or error, timeout, too_large "
            "(see *Report status*).",
        ),
        Column("checks_passed", "Int64", "Identities that pass."),
        Column("checks_failed", "Int64", "Identities that fail."),
        Column(
            "checks_incomplete",
            "Int64",
            "Identities that could not be evaluated (blank totals, missing cells).",
        ),
        Column(
            "problems",
            "list<string>",
            "What could not be read, one entry per problem, as text (see *Problems*).",
        ),
        Column(
            "problem_codes",
            "list<string>",
            "The code of each entry of `problems`, in the same order (see *Problems*).",
        ),
        Column(
            "extractor_version",
            "string",
            "nianbao version + digest of the extractor's code, labels and parsing "
            "libraries that extracted it.",
        ),
        Column(
            "synthetic",
            "boolean",
            "True for the bundled demo snapshot (`nianbao run --demo`): real URL "
            "patterns, invented numbers. Never true for crawled reports.",
        ),
    ),
    "agencies": (
        KEY,
        Column("agency", "string", "Agency name, completed with city and district."),
        Column("agency_kind", "string", "What the agency is (see *Agency kinds*)."),
        Column("province", "string", "Province-level division of its site."),
        Column("city", "string", "City of its site."),
        Column("district", "string", "District (区); null for city agencies."),
        Column("division_code", "string", "6-digit 行政区划代码."),
        Column(
            "site", "string", "Spider whose archive holds the agency's latest report."
        ),
    ),
    **dict.fromkeys(TABLES, (KEY, *CELL_COLUMNS)),
    "checks": (KEY, *CHECK_COLUMNS),
    "cross_year_checks": (
        KEY,
        Column("year", "Int64", "Report year Y."),
        Column("next_year", "Int64", "Y + 1."),
        Column("column", "string", "Applicant column code of table 三."),
        Column(
            "carried_forward",
            "Float64",
            "结转下年度继续办理 (carried_forward) in the report of year Y.",
        ),
        Column(
            "carried_over",
            "Float64",
            "上年结转政府信息公开申请数量 (carried_over) in the report of Y + 1.",
        ),
        Column(
            "status",
            "string",
            "pass (equal), fail (different) or incomplete (one is blank); flagged, "
            "never corrected.",
        ),
    ),
    "sections": (
        KEY,
        Column("section", "string", "Section code (see *Narrative sections*)."),
        Column("number", "Int64", "Section number 1–6."),
        Column("text", "string", "The section's text, one line per paragraph."),
    ),
}

# Chinese names of the dataset's columns, for dictionaries and Stata variable labels.
COLUMN_LABELS_ZH = {
    "agency_id": "机构代码", "agency": "机构名称", "agency_kind": "机构类型",
    "printed_agency": "报告所载机构名称", "district": "区县", "province": "省级行政区",
    "city": "市", "division_code": "行政区划代码",
    "site": "采集站点", "title": "报告标题", "url": "报告网页地址",
    "source_url": "表格来源文件地址", "source_sha256": "来源文件SHA-256",
    "publish_date": "发布日期", "fetched_at": "采集时间", "sha256": "网页SHA-256",
    "warc_file": "WARC文件", "warc_offset": "WARC偏移量", "record_id": "WARC记录号",
    "source_format": "来源格式", "ocr": "是否经OCR识别", "encoding": "文字编码",
    **{f"format_{spec.table}": f"表{spec.number}模板版本" for spec in table_specs()},
    "status": "状态",
    "checks_passed": "通过的勾稽校验数", "checks_failed": "未通过的勾稽校验数",
    "checks_incomplete": "无法完成的勾稽校验数", "problems": "问题",
    "problem_codes": "问题代码",
    "extractor_version": "提取程序版本", "row": "行代码", "column": "列代码",
    "row_label": "行标签", "column_label": "列标签", "printed_row_label": "报告所载行标签",
    "printed_column_label": "报告所载列标签", "raw": "原文", "value": "数值",
    "marker": "取值标记", "unit": "单位", "is_ocr": "是否经OCR识别", "check": "校验名称",
    "table": "表", "subject": "校验对象", "expected": "各项之和", "found": "所载合计",
    "year": "报告年度", "next_year": "下一年度", "carried_forward": "结转下年度继续办理",
    "carried_over": "上年结转申请数量", "section": "章节代码", "number": "章节序号",
    "text": "章节文本", "synthetic": "演示用虚构数据",
}  # fmt: skip

MARKERS = {
    "number": "a number: 1,234 → 1234, +3 → 3, -8 → -8, ０ → 0, 0件 → 0, 0.092 → 0.092",
    "blank": "an empty cell (also &nbsp; and <o:p></o:p>): value null",
    "dash": "—, -, --: value null, since a dash means zero in some reports and "
    "'not applicable' in others and the report does not say which",
    "slash": "/: value null, for the same reason as dash",
    "none_word": "无 ('none'): value 0",
    "unparsed": "text that is not a number: value null, raw kept",
}

STATUSES = {
    "ok": "all three tables read, every label matched, every identity passes or cannot be evaluated",
    "checks_failed": "all tables read and matched, but at least one identity fails",
    "partial": "a table is missing, or labels, cells or values could not be placed "
    "(each listed in `problems`)",
    "no_tables": "none of the three tables was found (an index page, a pre-2019 report, "
    "a format not read yet, an unreadable document)",
    "error": "the dataset's extraction failed on this document (an unreadable archive "
    "record, or an exception, named in `problems`); the report has no cells",
    "timeout": "the document was not extracted within its time limit; no cells",
    "too_large": "the document needed more memory than a worker may use; no cells",
}

PROBLEM_NOTES = """\
Each problem is a code, the table it concerns (none for the whole document) and a detail
(`extract/problems.py`). `problems` holds them as the text people read: the table, a colon
and the detail (`applications: table not found`), or the detail alone; `problem_codes` holds
their codes, in the same order. Programs compare codes: the text may be reworded, a code
changes only with a migration note. The codes (`extract/labels/problems.csv`), by the stage
that records them:
"""


LAYOUT_NOTES = """\
Files: `parquet/<table>/year=YYYY/part-0.parquet` (hive partitions; `agencies` is one file),
one file per table and year, rows sorted by `agency_id` (each report's cells stay in template
order), zstd-compressed, row groups of 16,384 rows with min/max statistics. The string
columns of the cell, checks and sections tables are Arrow dictionaries, so pandas loads them
as categoricals, except `agency_id`, which stays a plain string because pyarrow prunes row
groups only by the statistics of plain columns (with `agency_id` as a dictionary, reading
one agency-year read the whole year file: 0.10–0.15 s against 0.025 s).

Why: one agency-year is found without scanning the rest: the `year` filter picks one file
and the sorted `agency_id` statistics skip every row group but one or two. One file per
agency was measured on this machine at 2,000 files for 60,000 rows: 11–12 s to write and
1.3 s to read back, against 0.1 s and 0.02–0.03 s for one file (and 70× the disk), so
partitions stop at the year. Dictionary-encoded strings load 1.7 million cells into pandas
in about a third of the time plain strings take (0.47 s against 1.1–1.9 s, measured with
the same files). `benchmarks/dataset_benchmark.py` measures the whole layout on a
10,000-report archive.

`parquet` is a symbolic link to `parquet-versions/<version>/`: each run writes a complete
new version (unchanged year files are hard links) and switches the link in one rename, so
readers never see a half-written dataset and a killed run leaves the previous one whole.
The last 7 versions are kept (`nianbao extract --versions` lists them, `--rollback ID`
makes one current). Each version's `_nianbao/` folder, which readers skip, holds
`version.json` (id, time, reports, cells, extractor version, what changed),
`changes.parquet` (every changed cell: agency_id, year, table, row, column, old, new) and
`sources.parquet` (which archived document each report came from). Each file's key-value
metadata holds `nianbao.schema_version` and `nianbao.extractor_version`.
"""

SCHEMA_CHANGES = """\
Each file's `nianbao.schema_version` says which of these it follows.

- **3**: added `reports.problem_codes` (list<string>), the code of each entry of `problems`
  in the same order (see *Problems*). `problems` keeps its text, word for word. Select
  problems by code, no longer by matching their text: `"unreadable" in p` becomes
  `code == "unreadable_document"`. A dataset of version 2 is extracted again whole by the
  next run (its schema differs), so every file of a version has the column.
- **2** (nianbao 0.2): added `reports.source_sha256` (the attachment's digest when the
  cells come from an attachment), `agency_kind`, `province` and `city` (in `reports` and
  `agencies`), `reports.synthetic`, the cell tables' `matched_by` (label, sequence or
  split), and the `cross_year_checks` table. Three report statuses added: `error`, `timeout`,
  `too_large`, for documents the extraction could not finish; such a report has a row in
  `reports` (when the list page gave its agency and year) and no cells. Reports whose
  tables sit in a PDF, Word or image attachment now have their cells (before, they were
  `no_tables`). `extractor_version` now digests the extractor's code and parsing
  libraries, not only the label catalogue. No code or column was renamed or removed.
- **1**: the first published layout.
"""

AGENCY_NOTES = """\
`agency_id` is `<division code>-<pinyin of the name below the district>-<6 hex of a SHA-1
of the full name>`, e.g. `110102-duiwailianluofuwubangongshi-…` for 北京市西城区对外联络
服务办公室. Names are completed with city and district first (a list page's 金融街街道办事处
on the 西城 site becomes 北京市西城区金融街街道办事处), so an agency keeps one id across sites
and runs. When two archived documents give the same agency and year (the municipal portal
re-hosts district reports), the dataset keeps the better one: by status, then the latest.
"""


def frame(columns: tuple[Column, ...], data: dict[str, list]) -> pd.DataFrame:
    """A frame with the schema's columns and dtypes."""
    return frames(columns, {"": data})[""]


def frames(
    columns: tuple[Column, ...], parts: dict[str, dict[str, list]]
) -> dict[str, pd.DataFrame]:
    """Frames with the schema's columns and dtypes, one per part: one array per column, sliced.

    pandas spends more per array than per value on frames of a few hundred rows: a report's
    three cell frames build in three quarters of the time this way. Slices share the
    array's memory but not each other's.
    """
    names = list(parts)
    arrays = {
        c.name: pd.array(
            [value for name in names for value in parts[name][c.name]],
            dtype=_dtype(c.dtype),
        )
        for c in columns
    }
    built, start = {}, 0
    for name in names:
        end = start + len(parts[name][columns[0].name])
        built[name] = pd.DataFrame(
            {c: array[start:end] for c, array in arrays.items()}, copy=False
        )
        start = end
    return built


@functools.cache
def _dtype(name: str):
    # pandas resolves a dtype name by trying every registered dtype in turn: a third of the
    # time a report's frames took.
    return pandas_dtype(name)


def _columns_table(columns: tuple[Column, ...]) -> list[str]:
    lines = ["| column | dtype | description |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.dtype} | {c.description} |" for c in columns]
    return lines


# Small counts in prose, spelled out as docs/schema.md writes them.
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # fmt: skip


def _money_columns() -> str:
    """The money columns of each table, as docs/schema.md names them."""
    parts = []
    for table in TABLES:
        entries = table_catalogue(table).of_kind("column")
        codes = dict.fromkeys(e.code for e in entries if e.money)
        if codes:
            columns = " and ".join(f"`{code}`" for code in codes)
            parts.append(f"`{table}` columns {columns}")
    return "; ".join(parts)


def render_schema_markdown() -> str:
    """docs/schema.md, generated from the catalogue and the schema above."""
    out = [
        "# Schema",
        "",
        "<!-- Generated by `nianbao schema`; tests/test_docs.py fails when this file and the code disagree. -->",
        "",
        "`extract.parse_report(data, url=None, content_type=None)` returns a `Report`: metadata, one long",
        "frame per template table (one row per cell), the checks frame, the narrative sections and a",
        "status. Codes are the public contract: they change only with a migration note here.",
        "",
        "## Report metadata",
        "",
        *_columns_table(REPORT_FIELDS),
        "",
        "`Report.sections` maps each narrative section code (below) to its text.",
        "",
        "## Cell frames: " + ", ".join(f"`{table}`" for table in TABLES),
        "",
        *_columns_table(CELL_COLUMNS),
        "",
        "### Cell values",
        "",
        "| marker | meaning |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in MARKERS.items()],
        "",
        f"Money ({_money_columns()}) is expressed in 万元: a cell",
        "printed as 251000元, or under a header in 元, becomes 25.1 with `unit` = 元; with no unit",
        "printed anywhere the value stays as printed and `unit` is null.",
        "",
    ]
    for table, name_zh in TABLES.items():
        catalogue = table_catalogue(table)
        out += [f"## Table `{table}` — {name_zh}", ""]
        if catalogue.groups_as_rows:
            groups = len(catalogue.of_kind("column_group"))
            measures = len(catalogue.of_kind("column"))
            out += [
                f"Printed as one row of {groups * measures} columns in {_WORDS[groups]} "
                f"groups of {_WORDS[measures]}; the long frame keeps",
                "the group as `row` and the measure as `column`, so both stay template codes.",
            ]
        if _same_in_all_formats(table):
            out += [
                "The table is the same in both formats: its detected format is null."
            ]
        if catalogue.groups_as_rows or _same_in_all_formats(table):
            out.append("")
        for kind, title in (
            ("block", "Blocks (第二十条 items)"),
            ("row_group", "Row groups"),
            ("row", "Rows"),
            (
                "column_group",
                "Rows (groups)" if catalogue.groups_as_rows else "Column groups",
            ),
            ("column", "Columns"),
        ):
            entries = catalogue.of_kind(kind)
            if not entries:
                continue
            out += [
                f"### {title}",
                "",
                "| code | label | formats | under |",
                "|---|---|---|---|",
            ]
            out += [
                f"| `{e.code}` | {e.label_zh} | {' '.join(sorted(e.formats))} | {' '.join(e.parent)} |"
                for e in entries
            ]
            out.append("")
    out += [
        "## Checks",
        "",
        *_columns_table(CHECK_COLUMNS),
        "",
        "| check | identity |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in IDENTITIES.items()],
        "",
        "## Report status",
        "",
        "| status | meaning |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in STATUSES.items()],
        "",
        "## Problems",
        "",
        PROBLEM_NOTES,
        "| code | stage | meaning |",
        "|---|---|---|",
        *[
            f"| `{p.code}` | {p.stage} | {p.description} |"
            for p in problem_codes().values()
        ],
        "",
        "## The Parquet dataset",
        "",
        "`nianbao extract` writes these tables under `$NIANBAO_DATA/parquet/` (./data by default);",
        "`extract.load(table, year=, agency=, district=)` reads them into pandas. "
        + YEAR_NOTE,
        "",
        *[
            line
            for table, columns in DATASET_TABLES.items()
            for line in (f"### `{table}`", "", *_columns_table(columns), "")
        ],
        "### Physical layout",
        "",
        LAYOUT_NOTES,
        "### Schema versions (migration notes)",
        "",
        SCHEMA_CHANGES,
        "### Agency ids",
        "",
        AGENCY_NOTES,
        "### Agency kinds",
        "",
        "From the end of the agency's name, by the first matching rule of",
        "`extract/labels/agency_kinds.csv`. For a district's own figures use `government`",
        "(the report of the district government as a whole) or, where a district publishes",
        "no such report, `general_office`; never sum a district's departments, streets and",
        "townships with it, since each reports its own requests.",
        "",
        "| kind | 中文 | meaning | name ends with (regex) |",
        "|---|---|---|---|",
        *[
            f"| `{k.kind}` | {k.label_zh} | {k.description} | "
            f"`{k.pattern.replace('|', chr(92) + '|')}` |"
            for k in agency_kinds()
        ],
        "",
        "## Narrative sections",
        "",
        "| code | heading |",
        "|---|---|",
        *[f"| `{s.code}` | {s.label_zh} |" for s in sections()],
        "",
    ]
    return "\n".join(out)
