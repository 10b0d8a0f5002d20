"""The global search behind the search box in the top navigation: customers (name, number, contact person, phone,
e-mail, city) and quotes, orders, invoices and incidents by number, grouped by kind (``crm.search``)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from crm.search import MAX_TEXT, search

from .rendering import render, require_user

router = APIRouter(include_in_schema=False)


@router.get("/search", response_model=None)
def search_page(request: Request, q: str = "", search_text: str = Query("", alias="search")) -> Response:
    """The results grouped by kind; exactly one hit opens it right away. ``search`` is the header box's name (a
    page's own filter field is ``q``), ``q`` the search page's own field."""
    user = require_user(request)
    q = q or search_text
    with request.app.state.engine.db.read() as conn:
        result = search(conn, q[:MAX_TEXT])
    if result.total == 1 and request.query_params.get("all") != "1":
        for items, path in ((result.customers, "/customers"), (result.quotes, "/quotes"),
                            (result.orders, "/orders"), (result.invoices, "/invoices"),
                            (result.incidents, "/service-desk/incidents")):
            if items:
                return RedirectResponse(f"{path}/{items[0]['id']}", status_code=303)
    page: HTMLResponse = render(request, "search.html", user=user, q=q[:MAX_TEXT], result=result)
    return page
