"""One way every list resource answers: a JSON page with its total, or the same rows as CSV.

CSV is what a clerk opens in a spreadsheet: UTF-8 with a byte-order mark, ``;`` separated, optionally with the
German decimal comma (``decimalComma=true``). A client asks for it with ``format=csv`` or ``Accept: text/csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import Response


def camel_key(key: str) -> str:
    head, *tail = key.split("_")
    return head + "".join(part.title() for part in tail)


def camel_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A read-model row as camelCase JSON; Decimals as strings so no cent is lost to a float."""
    return {camel_key(k): (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def wants_csv(request: Request) -> bool:
    return request.query_params.get("format") == "csv" or "text/csv" in request.headers.get("accept", "")


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


def csv_response(rows: Iterable[Mapping[str, Any]], filename: str, columns: Sequence[str] | None = None,
                 decimal_comma: bool = False) -> Response:
    return Response("\ufeff" + to_csv(rows, columns, decimal_comma), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


def page(request: Request, rows: Iterable[Mapping[str, Any]], total: int, limit: int, offset: int,
         name: str) -> dict[str, Any] | Response:
    """The list answer: ``{items, total, limit, offset}`` in camelCase, or CSV when asked (``name`` names the
    file)."""
    items = [camel_row(r) for r in rows]
    if wants_csv(request):
        return csv_response(items, name, decimal_comma=request.query_params.get("decimalComma") == "true")
    return {"items": items, "total": total, "limit": limit, "offset": offset}
