"""CSV as a clerk opens it in a spreadsheet: ``;`` separated, CRLF lines, optionally with the German decimal comma.
The one writer behind every list export and the campaign mailing's recipient list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

BOM = "\ufeff"  # so spreadsheet programs read the UTF-8 as UTF-8
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+cmd|…``, ``@SUM``) gets a leading
    ``'``, which spreadsheets show as a plain-text marker; a number written as text (``-12.50``) stays a number."""
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def restore(cell: str) -> str:
    """The imported value of a cell ``neutralise`` wrote, so an export imported again keeps ``+43 1 5123456``."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def _is_number(text: str) -> bool:
    head, _separator, tail = text.removeprefix("-").replace(",", ".", 1).partition(".")
    return head.isdigit() and (not tail or tail.isdigit())


def _cell(value: Any, decimal_comma: bool) -> str:
    """Numbers go out as numbers (``-5`` stays ``-5``); every other cell is neutralised."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _text(value, decimal_comma)
    return neutralise(_text(value, decimal_comma))


def _text(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(_text(v, decimal_comma) for v in value)
    text = str(value)
    numeric = isinstance(value, Decimal | float) or (isinstance(value, str) and _is_decimal(text))
    if decimal_comma and numeric:
        text = text.replace(".", ",")
    return text


def _is_decimal(text: str) -> bool:
    head, dot, tail = text.lstrip("-").partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit()


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None, decimal_comma: bool = False) -> str:
    """Rows as CSV text; the columns are the first row's keys unless given."""
    items = list(rows)
    header = list(columns) if columns is not None else (list(items[0]) if items else [])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row in items:
        writer.writerow([_cell(row.get(column), decimal_comma) for column in header])
    return out.getvalue()
