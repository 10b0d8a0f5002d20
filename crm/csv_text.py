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


def _cell(value: Any, decimal_comma: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(_cell(v, decimal_comma) for v in value)
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
