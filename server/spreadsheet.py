"""Spreadsheet cells that are data, never code (CSV and formula injection).

Anyone who can write a record (a field cadre naming an enterprise, a problem
description) chooses text that ends up in the coordination team's exports. Excel, WPS
and LibreOffice run a CSV cell that starts with `=`, `+`, `-` or `@` (and, after a tab
or carriage return, the same) as a formula, and openpyxl writes every string that
starts with `=` as a formula cell. So:

- CSV: a text cell that starts with one of FORMULA_START gets the usual apostrophe
  prefix, which spreadsheet apps show as text (the apostrophe is visible in the raw
  file, which is the accepted trade-off: OWASP's "CSV injection" advice);
- XLSX: a text cell that openpyxl would type as a formula or an error code is written
  with the explicit string type (`t="inlineStr"`), so the file holds no formula at all
  and the value keeps its text exactly; characters XML cannot hold (control
  characters) are replaced by U+FFFD instead of failing the whole export.

Numbers stay numbers: only `str` values are touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

# ASCII starts that spreadsheet apps read as a formula, the full-width forms a Chinese
# input method types for them (WPS converts some on input), tab and carriage return.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_XLSX_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")
# What openpyxl types as an error cell (openpyxl.cell.cell.ERROR_CODES).
ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))


class Percent(float):
    """A share (0.8889) that a spreadsheet shows as a percentage (88.9%)."""


def csv_text(value: Any) -> Any:
    """A CSV cell's value: text that could start a formula gets an apostrophe first;
    times are written as `YYYY-MM-DD HH:MM`, dates as `YYYY-MM-DD`, shares as `88.9%`."""
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Percent):
        return f"{value * 100:.1f}%"
    return value


def csv_row(row: Iterable[Any]) -> list[Any]:
    return [csv_text(v) for v in row]


def xlsx_value(ws: Any, value: Any) -> Any:
    """An XLSX cell's value for `ws.append`: text openpyxl would not store as plain text
    (a leading `=`, an error code such as `#REF!`) becomes a cell of explicit string
    type; control characters XML cannot carry are replaced."""
    if not isinstance(value, str):
        return value
    if _XLSX_ILLEGAL.search(value):
        value = _XLSX_ILLEGAL.sub("\ufffd", value)
    if value.startswith("=") or value in ERROR_CODES:
        from openpyxl.cell.cell import Cell  # here: the CSV side needs no openpyxl

        cell = Cell(ws, row=1, column=1, value=None)
        cell._value = value[:32767]
        cell.data_type = "s"
        return cell
    return value


def xlsx_row(ws: Any, row: Iterable[Any]) -> list[Any]:
    return [xlsx_value(ws, v) for v in row]
