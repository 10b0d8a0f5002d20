"""One way every list resource answers: a JSON page with its total, or the same rows as CSV.

CSV is what a clerk opens in a spreadsheet: UTF-8 with a byte-order mark, ``;`` separated, optionally with the
German decimal comma (``decimalComma=true``). A client asks for it with ``format=csv`` or ``Accept: text/csv``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from crm.csv_text import BOM, to_csv


def camel_key(key: str) -> str:
    head, *tail = key.split("_")
    return head + "".join(part.title() for part in tail)


def camel_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A read-model row as camelCase JSON; Decimals as strings so no cent is lost to a float."""
    return {camel_key(k): (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}


def wants_csv(request: Request) -> bool:
    return request.query_params.get("format") == "csv" or "text/csv" in request.headers.get("accept", "")


def csv_response(rows: Iterable[Mapping[str, Any]], filename: str, columns: Sequence[str] | None = None,
                 decimal_comma: bool = False) -> Response:
    return Response(BOM + to_csv(rows, columns, decimal_comma), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


def page(request: Request, rows: Iterable[Mapping[str, Any]], total: int, limit: int, offset: int,
         name: str) -> dict[str, Any] | Response:
    """The list answer: ``{items, total, limit, offset}`` in camelCase, or CSV when asked (``name`` names the
    file)."""
    items = [camel_row(r) for r in rows]
    if wants_csv(request):
        return csv_response(items, name, decimal_comma=request.query_params.get("decimalComma") == "true")
    return {"items": items, "total": total, "limit": limit, "offset": offset}
