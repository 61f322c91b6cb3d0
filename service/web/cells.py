"""Spreadsheet cells that stay data: the one rule every CSV and XLSX export applies.

A spreadsheet opening an export evaluates a cell that begins with ``=``, ``+``, ``-`` or
``@`` as a formula (``=HYPERLINK(…)`` leaks data, ``=cmd|' /C calc'!A0`` runs a program):
names and labels that users type (campaigns, grids, items, services) must not become
formulas. Following OWASP's CSV-injection guidance
(https://owasp.org/www-community/attacks/CSV_Injection):

- **CSV**: a text value beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is prefixed with a single quote, which spreadsheets read as « this is text ».
  Numbers stay numbers: values of a numeric type are never touched, and neither is a text
  that is only a signed decimal number (``-2``, ``+33612345678``: a spreadsheet reads it as
  a number, never a formula).
- **XLSX**: text is written as text (a string cell, never a formula cell), unchanged —
  openpyxl makes any ``str`` beginning with ``=`` a formula unless told otherwise.

Pure: no I/O, no import beyond the standard library (openpyxl only for type checking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell, MergedCell

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet evaluates (see the module's rule)."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """Each value of a row through :func:`csv_cell`."""
    return [csv_cell(v) for v in values]


def strings_stay_strings(rows: Iterable[Iterable[Cell | MergedCell]]) -> None:
    """Turn back into text every cell openpyxl took for a formula because its text began
    with ``=`` (the exports write no formula of their own): ``sheet.iter_rows()``."""
    for row in rows:
        for cell in row:
            if cell.data_type == "f" and isinstance(cell.value, str):
                cell.data_type = "s"
