"""The docs are generated from the code, or checked against it, so they cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from extract import parse_report
from extract.catalogue import TABLES, table_catalogue
from extract.schema import (
    CELL_COLUMNS,
    CHECK_COLUMNS,
    REPORT_FIELDS,
    render_schema_markdown,
)
from nianbao.cli import main

ROOT = Path(__file__).parent.parent


def test_schema_doc_is_generated_from_the_code():
    written = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    assert written == render_schema_markdown(), "run: nianbao schema > docs/schema.md"


def test_schema_doc_lists_every_code_and_column():
    doc = render_schema_markdown()
    for table in TABLES:
        assert f"`{table}`" in doc
        for entry in table_catalogue(table).entries:
            if entry.kind != "heading":
                assert f"| `{entry.code}` | {entry.label_zh} |" in doc
    for column in (*CELL_COLUMNS, *CHECK_COLUMNS, *REPORT_FIELDS):
        assert f"| `{column.name}` |" in doc


def test_documented_report_fields_are_the_report_metadata():
    assert [c.name for c in REPORT_FIELDS] == list(parse_report(b"").metadata())


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(name):
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"nianbao {name}" in (ROOT / "README.md").read_text(encoding="utf-8")
