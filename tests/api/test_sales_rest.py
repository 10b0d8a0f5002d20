"""Sales resources over REST: quotes → orders with sub-orders → booked services → invoices, and contracts.

Runs against the real app on a loopback Uvicorn, on SQLite and PostgreSQL. Rules come back as 422 naming the
field, a state change not allowed now as 409, unknown path ids as 404, writes without a sales role as 403.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.api.conftest import Api

TODAY = datetime.now(UTC).date()


def _setup(api: Api) -> tuple[httpx.Client, dict[str, int]]:
    """A sales client, a customer and three products: a DSL line (monthly, needs an IP), a modem, a setup fee."""
    manager, sales = api.client("manager"), api.client("sales")
    ids: dict[str, int] = {}
    for code, kind, price, steps in (("SDSL-20", "recurring_monthly", "19.99", ["ip"]),
                                     ("MODEM-X", "hardware", "89.00", ["hardware"]),
                                     ("SETUP", "setup_fee", "49.00", [])):
        created = manager.post("/products", json={"code": code, "name": f"Produkt {code}", "category": "access",
                                                  "kind": kind, "listPrice": price, "provisioningSteps": steps})
        assert created.status_code == 201, created.text
        ids[code] = created.json()["id"]
    account = sales.post("/accounts", json={"name": "Müller Datentechnik", "legalForm": "GmbH"})
    assert account.status_code == 201, account.text
    ids["account"] = account.json()["id"]
    return sales, ids


def _quote(sales: httpx.Client, ids: dict[str, int], **extra: Any) -> dict[str, Any]:
    body = {"accountId": ids["account"], "validUntil": (TODAY + timedelta(days=30)).isoformat(),
            "positions": [{"productId": ids["SDSL-20"], "quantity": 3, "discountPercent": "10"},
                          {"description": "Vor-Ort-Einrichtung", "quantity": "1", "unitPrice": "49.00",
                           "vatRate": "7"},
                          {"productId": ids["MODEM-X"], "quantity": 1}], **extra}
    created = sales.post("/quotes", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def _field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return str(response.json()["errors"][0]["field"])


def test_quote_lifecycle_totals_revisions_and_search(api: Api) -> None:
    sales, ids = _setup(api)
    quote = _quote(sales, ids)
    assert quote["number"].startswith(f"Q-{TODAY.year}-") and quote["version"] == 1 and quote["status"] == "draft"
    # 3 × 19.99 − 10 % = 53.973 → 53.97; VAT per rate on the sums: 19 % of 142.97, 7 % of 49.00
    assert [p["total"] for p in quote["positions"]] == ["53.97", "49.00", "89.00"]
    assert quote["positions"][0]["description"] == "Produkt SDSL-20" and quote["positions"][0]["unitPrice"] == "19.99"
    assert quote["totals"] == {"net": "191.97", "vat": "30.59", "gross": "222.56",
                               "vatByRate": [{"rate": "7.00", "vat": "3.43"}, {"rate": "19.00", "vat": "27.16"}]}
    assert quote["net"] == "191.97" and quote["gross"] == "222.56"

    replaced = sales.put(f"/quotes/{quote['id']}/positions", json={"positions": [
        {"productId": ids["SDSL-20"], "quantity": 3, "discountPercent": "10"}]})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["totals"] == {"net": "53.97", "vat": "10.25", "gross": "64.22",
                                         "vatByRate": [{"rate": "19.00", "vat": "10.25"}]}

    sent = sales.post(f"/quotes/{quote['id']}/send")
    assert sent.status_code == 200 and sent.json()["status"] == "sent" and sent.json()["sentAt"]
    frozen = sales.put(f"/quotes/{quote['id']}/positions", json={"positions": [{"productId": ids["SETUP"],
                                                                                 "quantity": 1}]})
    assert frozen.status_code == 409 and frozen.json()["type"].endswith("/conflict")
    assert sales.post(f"/quotes/{quote['id']}/send").status_code == 409

    revision = sales.post(f"/quotes/{quote['id']}/revisions", json={})
    assert revision.status_code == 201, revision.text
    v2 = revision.json()
    assert (v2["number"], v2["version"], v2["status"]) == (quote["number"], 2, "draft")
    assert v2["totals"]["gross"] == "64.22" and [v["version"] for v in v2["versions"]] == [1, 2]
    assert sales.post(f"/quotes/{quote['id']}/revisions").status_code == 409  # only the latest is revised

    rejected = sales.post(f"/quotes/{quote['id']}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert sales.post(f"/quotes/{quote['id']}/accept").status_code == 409

    listed = sales.get("/quotes", params={"accountId": ids["account"]}).json()
    assert listed["total"] == 2 and listed["items"][0]["accountName"] == "Müller Datentechnik"
    assert sales.get("/quotes", params={"status": "draft"}).json()["total"] == 1
    assert sales.get("/quotes", params={"q": "müller"}).json()["total"] == 2
    assert sales.get("/quotes", params={"q": quote["number"].lower()}).json()["total"] == 2
    assert sales.get("/quotes", params={"q": "schmidt"}).json()["total"] == 0
    paged = sales.get("/quotes", params={"limit": 1, "offset": 1}).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1 and paged["limit"] == 1 and paged["offset"] == 1


def test_order_from_quote_adjust_produce_deliver_book_and_bill(api: Api) -> None:
    sales, ids = _setup(api)
    quote = _quote(sales, ids)
    early = sales.post("/orders", json={"quoteId": quote["id"]})
    assert early.status_code == 409  # a draft cannot be ordered yet
    assert sales.post(f"/quotes/{quote['id']}/send").status_code == 200
    assert sales.post(f"/quotes/{quote['id']}/accept").json()["status"] == "accepted"

    created = sales.post("/orders", json={"quoteId": quote["id"], "dropLines": [2]})
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["number"].startswith(f"A-{TODAY.year}-") and order["status"] == "open"
    assert [p["description"] for p in order["positions"]] == ["Produkt SDSL-20", "Produkt MODEM-X"]
    assert order["totals"]["net"] == "142.97" and order["totals"]["gross"] == "170.13"
    assert [(s["lineNo"], s["steps"], s["status"]) for s in order["subOrders"]] == [
        (1, ["ip"], "pending"), (2, ["hardware"], "pending")]
    assert sales.post("/orders", json={"quoteId": quote["id"]}).status_code == 409  # one order per quote

    adjusted = sales.patch(f"/orders/{order['id']}/positions/1", json={"quantity": "2"})
    assert adjusted.status_code == 200, adjusted.text  # the 10 % discount stays: 2 × 19.99 − 10 % = 35.98
    assert adjusted.json()["positions"][0]["total"] == "35.98" and adjusted.json()["totals"]["net"] == "124.98"
    removed = sales.patch(f"/orders/{order['id']}/positions/2", json={"remove": True})
    assert removed.status_code == 200 and len(removed.json()["positions"]) == 1
    assert len(removed.json()["subOrders"]) == 1

    produced = sales.post(f"/orders/{order['id']}/start-production")
    assert produced.status_code == 200 and produced.json()["status"] == "in_production"
    late = sales.patch(f"/orders/{order['id']}/positions/1", json={"quantity": "5"})
    assert late.status_code == 409 and "open" in late.json()["detail"]
    sub = produced.json()["subOrders"][0]["id"]
    skip = sales.patch(f"/orders/{order['id']}/sub-orders/{sub}", json={"status": "done"})
    assert skip.status_code == 409  # pending → done skips the work
    assert _field(sales.patch(f"/orders/{order['id']}/sub-orders/{sub}", json={"status": "finished"})) == "status"
    assert sales.patch(f"/orders/{order['id']}/sub-orders/{sub}", json={"status": "in_progress"}).status_code == 200
    delivered = sales.patch(f"/orders/{order['id']}/sub-orders/{sub}", json={"status": "done"}).json()
    assert delivered["status"] == "delivered" and delivered["deliveredAt"]
    assert delivered["subOrders"][0]["completedAt"]
    assert sales.post(f"/orders/{order['id']}/cancel").status_code == 409

    booked = sales.post(f"/orders/{order['id']}/services")
    assert booked.status_code == 201, booked.text
    assert [(s["productCode"], s["quantity"], s["billingPeriod"], s["status"]) for s in booked.json()["items"]] == [
        ("SDSL-20", "2.000", "monthly", "ordered")]
    assert sales.post(f"/orders/{order['id']}/services").status_code == 409  # already booked
    not_started = sales.post("/invoices", json={"orderId": order["id"]})
    assert not_started.status_code == 409 and "nothing to bill yet" in not_started.text  # the line is not running
    service_id = booked.json()["items"][0]["id"]
    started = sales.post(f"/services/{service_id}/activate", json={"startDate": TODAY.replace(day=1).isoformat()})
    assert started.status_code == 200, started.text

    invoice = sales.post("/invoices", json={"orderId": order["id"]})  # the first period: the whole month
    assert invoice.status_code == 201, invoice.text
    bill = invoice.json()
    assert f"[Leistung {service_id} · {TODAY:%Y-%m}]" in bill["positions"][0]["description"]
    assert bill["number"].startswith(f"R-{TODAY.year}-") and bill["orderId"] == order["id"]
    assert bill["totals"] == delivered["totals"] and bill["status"] == "open" and bill["overdue"] is False
    assert bill["dueDate"] == (TODAY + timedelta(days=14)).isoformat()
    paid = sales.post(f"/invoices/{bill['id']}/pay")
    assert paid.status_code == 200 and paid.json()["status"] == "paid" and paid.json()["paidAt"]
    assert sales.post(f"/invoices/{bill['id']}/pay").status_code == 409
    assert sales.post(f"/invoices/{bill['id']}/cancel").status_code == 409

    listed = sales.get("/orders", params={"accountId": ids["account"], "status": "delivered"}).json()
    assert listed["total"] == 1 and listed["items"][0]["number"] == order["number"]
    assert sales.get(f"/orders/{order['id']}").json()["subOrders"][0]["status"] == "done"


def test_cancelled_order_cannot_be_billed(api: Api) -> None:
    sales, ids = _setup(api)
    quote = _quote(sales, ids)
    sales.post(f"/quotes/{quote['id']}/send")
    sales.post(f"/quotes/{quote['id']}/accept")
    order = sales.post("/orders", json={"quoteId": quote["id"]}).json()
    assert sales.post(f"/orders/{order['id']}/cancel").json()["status"] == "cancelled"
    assert sales.post(f"/orders/{order['id']}/start-production").status_code == 409
    assert sales.post("/invoices", json={"orderId": order["id"]}).status_code == 409
    assert _field(sales.post("/invoices", json={"orderId": 999999})) == "orderId"
    assert _field(sales.post("/invoices", json={"orderId": order["id"], "accountId": ids["account"]})) == "orderId"


def test_booked_service_provisioning_and_states(api: Api) -> None:
    sales, ids = _setup(api)
    created = sales.post("/services", json={"accountId": ids["account"], "productId": ids["SDSL-20"]})
    assert created.status_code == 201, created.text
    service = created.json()
    assert (service["status"], service["productCode"], service["accountName"]) == (
        "ordered", "SDSL-20", "Müller Datentechnik")
    one_off = sales.post("/services", json={"accountId": ids["account"], "productId": ids["MODEM-X"]})
    assert _field(one_off) == "productId"

    patched = sales.patch(f"/services/{service['id']}", json={"domainName": "Mueller-Daten.DE.",
                                                              "ipAddress": "192.0.2.0/29", "modemSerial": "SN-4711"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["domainName"], patched.json()["ipAddress"], patched.json()["modemSerial"]) == (
        "mueller-daten.de", "192.0.2.0/29", "SN-4711")
    assert _field(sales.patch(f"/services/{service['id']}", json={"ipAddress": "300.1.1.1"})) == "ipAddress"
    assert _field(sales.patch(f"/services/{service['id']}", json={"domainName": "-bad-.de"})) == "domainName"

    assert sales.post(f"/services/{service['id']}/suspend").status_code == 409  # not active yet
    start = TODAY.isoformat()
    bad_end = sales.post(f"/services/{service['id']}/activate",
                         json={"startDate": start, "contractEnd": (TODAY - timedelta(days=1)).isoformat()})
    assert _field(bad_end) == "contractEnd"
    active = sales.post(f"/services/{service['id']}/activate", json={"startDate": start})
    assert active.status_code == 200 and active.json()["status"] == "active" and active.json()["startDate"] == start
    assert sales.post(f"/services/{service['id']}/suspend").json()["status"] == "suspended"
    assert sales.post(f"/services/{service['id']}/resume").json()["status"] == "active"
    cancelled = sales.post(f"/services/{service['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelledAt"]
    assert sales.post(f"/services/{service['id']}/resume").status_code == 409

    listed = sales.get("/services", params={"accountId": ids["account"], "status": "cancelled"}).json()
    assert listed["total"] == 1 and listed["items"][0]["domainName"] == "mueller-daten.de"
    assert sales.get("/services", params={"q": "mueller-daten"}).json()["total"] == 1
    assert sales.get("/services", params={"status": "active"}).json()["total"] == 0
    assert sales.get(f"/services/{service['id']}").json()["modemSerial"] == "SN-4711"


def test_free_invoice_overdue_reminders_and_csv(api: Api) -> None:
    sales, ids = _setup(api)
    issued = TODAY - timedelta(days=30)
    created = sales.post("/invoices", json={
        "accountId": ids["account"], "issueDate": issued.isoformat(), "dueDays": 14,
        "positions": [{"productId": ids["SDSL-20"], "quantity": 3, "discountPercent": "10"}]})
    assert created.status_code == 201, created.text
    bill = created.json()
    assert bill["totals"]["gross"] == "64.22" and bill["overdue"] is True
    assert bill["dueDate"] == (issued + timedelta(days=14)).isoformat()
    current = sales.post("/invoices", json={"accountId": ids["account"], "positions": [
        {"description": "Rufnummernportierung", "quantity": 1, "unitPrice": "12.50", "vatRate": "19"}]}).json()
    assert current["overdue"] is False

    overdue = sales.get("/invoices", params={"overdue": "true"}).json()
    assert overdue["total"] == 1 and overdue["items"][0]["id"] == bill["id"] and overdue["items"][0]["overdue"]
    assert sales.get("/invoices", params={"overdue": "false"}).json()["items"][0]["id"] == current["id"]
    assert sales.get("/invoices", params={"status": "open", "accountId": ids["account"]}).json()["total"] == 2

    reminded = sales.post(f"/invoices/{bill['id']}/reminders")
    assert reminded.status_code == 201, reminded.text
    assert reminded.json()["level"] == 1 and reminded.json()["invoice"]["remindersSent"] == 1
    too_soon = sales.post(f"/invoices/{bill['id']}/reminders")
    assert too_soon.status_code == 409
    later = sales.post(f"/invoices/{bill['id']}/reminders", json={"on": (TODAY + timedelta(days=14)).isoformat()})
    assert later.status_code == 201 and later.json()["level"] == 2
    assert sales.post(f"/invoices/{current['id']}/reminders").status_code == 409  # not overdue

    exported = sales.get("/invoices", params={"format": "csv", "decimalComma": "true", "overdue": "true"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.lstrip("\ufeff").splitlines()
    header = lines[0].split(";")
    assert len(lines) == 2 and "number" in header and "gross" in header and "accountName" in header
    row = dict(zip(header, lines[1].split(";"), strict=True))
    assert row["number"] == bill["number"] and row["gross"] == "64,22" and row["overdue"] == "true"

    cancelled = sales.post(f"/invoices/{current['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert sales.post(f"/invoices/{current['id']}/pay").status_code == 409
    assert _field(sales.post("/invoices", json={"positions": []})) == "accountId"
    assert _field(sales.post("/invoices", json={"accountId": ids["account"], "positions": []})) == "positions"


def test_contracts_and_notice(api: Api) -> None:
    sales, ids = _setup(api)
    service = sales.post("/services", json={"accountId": ids["account"], "productId": ids["SDSL-20"]}).json()
    created = sales.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-01-15",
                                             "termMonths": 24, "noticeMonths": 3,
                                             "bookedServiceIds": [service["id"]]})
    assert created.status_code == 201, created.text
    contract = created.json()
    assert (contract["endDate"], contract["noticeDeadline"], contract["bookedServiceIds"]) == (
        "2028-01-14", "2027-10-14", [service["id"]])
    assert sales.get(f"/services/{service['id']}").json()["contractEnd"] == "2028-01-14"

    in_time = sales.post(f"/contracts/{contract['id']}/notice", json={"receivedOn": "2027-10-01"})
    assert in_time.status_code == 200, in_time.text
    assert in_time.json()["endDate"] == "2028-01-14" and in_time.json()["contract"]["status"] == "notice_given"
    assert sales.post(f"/contracts/{contract['id']}/notice", json={"receivedOn": "2027-10-02"}).status_code == 409

    late = sales.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-01-01",
                                          "termMonths": 12, "noticeMonths": 3, "renewalMonths": 12}).json()
    assert late["endDate"] == "2026-12-31"
    extended = sales.post(f"/contracts/{late['id']}/notice", json={"receivedOn": "2026-10-01"})
    assert extended.json()["endDate"] == "2027-12-31"  # after the deadline (30 Sep): renewed once more

    assert _field(sales.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-01-01",
                                                 "termMonths": 12, "noticeMonths": 12})) == "noticeMonths"
    assert _field(sales.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-01-01",
                                                 "termMonths": 12, "bookedServiceIds": [999999]})
                  ) == "bookedServiceIds"
    listed = sales.get("/contracts", params={"accountId": ids["account"], "q": "müller"}).json()
    assert listed["total"] == 2 and {c["status"] for c in listed["items"]} == {"notice_given"}
    assert sales.get("/contracts", params={"status": "active"}).json()["total"] == 0
    assert sales.get(f"/contracts/{late['id']}").json()["noticeReceivedOn"] == "2026-10-01"


def test_bad_input_is_422_naming_the_field(api: Api) -> None:
    sales, ids = _setup(api)
    valid_until = (TODAY + timedelta(days=30)).isoformat()

    def quote(positions: list[dict[str, Any]], **body: Any) -> httpx.Response:
        return sales.post("/quotes", json={"accountId": ids["account"], "validUntil": valid_until,
                                           "positions": positions, **body})

    assert _field(quote([{"productId": ids["SETUP"], "quantity": -1}])) == "positions.0.quantity"
    assert _field(quote([{"productId": ids["SETUP"], "quantity": 1}, {"productId": 999999, "quantity": 1}])
                  ) == "positions.1.productId"
    assert _field(quote([{"description": "Frei", "quantity": 1}])) == "positions.0.unitPrice"
    assert _field(quote([{"productId": ids["SETUP"], "quantity": 1, "discountPercent": "5",
                          "discountAmount": "1.00"}])) == "positions.0.discountAmount"
    assert _field(quote([{"productId": ids["SETUP"], "quantity": 1, "unitPrice": "1.001"}])) == "positions.0.unitPrice"
    assert _field(quote([])) == "positions"
    assert _field(quote([{"productId": ids["SETUP"], "quantity": 1}], validUntil="2026-02-30")) == "validUntil"
    assert _field(quote([{"productId": ids["SETUP"], "quantity": 1}], validUntil="2020-01-01")) == "validUntil"
    assert _field(quote([{"productId": ids["SETUP"], "quantity": 1}], accountId=999999)) == "accountId"
    assert _field(sales.post("/orders", json={"quoteId": 999999})) == "quoteId"
    assert _field(sales.get("/quotes", params={"limit": 0})) == "limit"

    draft = _quote(sales, ids)
    sales.post(f"/quotes/{draft['id']}/send")
    sales.post(f"/quotes/{draft['id']}/accept")
    assert _field(sales.post("/orders", json={"quoteId": draft["id"], "dropLines": [7]})) == "dropLines"
    assert _field(sales.post("/orders", json={"quoteId": draft["id"], "dropLines": [1, 2, 3]})) == "dropLines"
    order = sales.post("/orders", json={"quoteId": draft["id"]}).json()
    assert _field(sales.patch(f"/orders/{order['id']}/positions/1", json={"quantity": "0"})) == "quantity"
    assert _field(sales.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-13-01",
                                                 "termMonths": 12})) == "startDate"


def test_unknown_ids_are_404(api: Api) -> None:
    sales, ids = _setup(api)
    for path in ("/quotes/999999", "/orders/999999", "/services/999999", "/invoices/999999", "/contracts/999999"):
        response = sales.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
    for path in ("/quotes/999999/send", "/orders/999999/cancel", "/services/999999/activate",
                 "/invoices/999999/pay", "/invoices/999999/reminders", "/quotes/999999/revisions"):
        assert sales.post(path).status_code == 404, path
    assert sales.post("/contracts/999999/notice", json={"receivedOn": "2026-01-01"}).status_code == 404
    assert sales.put("/quotes/999999/positions", json={"positions": [{"productId": ids["SETUP"],
                                                                      "quantity": 1}]}).status_code == 404
    quote = _quote(sales, ids)
    sales.post(f"/quotes/{quote['id']}/send")
    sales.post(f"/quotes/{quote['id']}/accept")
    order = sales.post("/orders", json={"quoteId": quote["id"]}).json()
    assert sales.patch(f"/orders/{order['id']}/positions/9", json={"quantity": "1"}).status_code == 404
    assert sales.patch(f"/orders/{order['id']}/sub-orders/999999", json={"status": "in_progress"}).status_code == 404
    assert sales.get("/quotes/0").status_code == 422  # not an id at all


def test_reads_for_everyone_writes_for_sales_roles(api: Api) -> None:
    sales, ids = _setup(api)
    quote = _quote(sales, ids)
    designer = api.client("designer")
    assert designer.get(f"/quotes/{quote['id']}").status_code == 200
    assert designer.get("/invoices").status_code == 200
    forbidden = designer.post(f"/quotes/{quote['id']}/send")
    assert forbidden.status_code == 403 and forbidden.json()["type"].endswith("/forbidden")
    assert designer.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-01-01",
                                             "termMonths": 12}).status_code == 403
    assert api.client().get("/quotes").status_code == 401
    integration = api.client("integration")
    assert integration.post(f"/quotes/{quote['id']}/send").json()["status"] == "sent"
    manager_view = api.client("manager").get("/quotes", params={"format": "csv"})
    assert manager_view.status_code == 200 and manager_view.text.lstrip("\ufeff").startswith("id;number;version;")
    assert date.fromisoformat(quote["validUntil"]) == TODAY + timedelta(days=30)


def test_amounts_beyond_the_money_columns_are_refused_on_postgresql(api: Api, db_url: str) -> None:
    """Numeric(12, 2) holds below ten billion: PostgreSQL refuses more, which is bad input, never a 500."""
    sales, ids = _setup(api)
    huge = sales.post("/quotes", json={
        "accountId": ids["account"], "validUntil": (TODAY + timedelta(days=1)).isoformat(),
        "positions": [{"description": "Rechenzentrum", "quantity": "999999999", "unitPrice": "9999999999.99",
                       "vatRate": "19"}]})
    if db_url.startswith("postgresql"):
        assert _field(huge) == "positions"
        assert sales.get("/quotes").json()["total"] == 0  # nothing half-written, no number used up
    else:
        assert huge.status_code == 201  # SQLite has no fixed precision


def test_patch_a_draft_quote_then_409_once_sent(api: Api) -> None:
    sales, ids = _setup(api)
    quote = _quote(sales, ids)
    person = sales.post(f"/accounts/{ids['account']}/contacts", json={"lastName": "Müller", "salutation": "Herr"})
    stranger_account = sales.post("/accounts", json={"name": "Fremd GmbH"}).json()["id"]
    stranger = sales.post(f"/accounts/{stranger_account}/contacts", json={"lastName": "Fremd"}).json()["id"]
    later = (TODAY + timedelta(days=60)).isoformat()
    patched = sales.patch(f"/quotes/{quote['id']}", json={"validUntil": later, "contactId": person.json()["id"]})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["validUntil"], body["contactId"], body["status"]) == (later, person.json()["id"], "draft")
    assert body["totals"] == quote["totals"] and sales.get(f"/quotes/{quote['id']}").json() == body
    for change, field in [({"validUntil": (TODAY - timedelta(days=1)).isoformat()}, "validUntil"),
                          ({"validUntil": None}, "validUntil"), ({"contactId": stranger}, "contactId"),
                          ({"contactId": 999999}, "contactId")]:
        assert _field(sales.patch(f"/quotes/{quote['id']}", json=change)) == field, change
    cleared = sales.patch(f"/quotes/{quote['id']}", json={"contactId": None}).json()
    assert cleared["contactId"] is None and cleared["validUntil"] == later  # nothing else changed
    assert sales.patch("/quotes/999999", json={"contactId": None}).status_code == 404
    assert api.client("hr").get(f"/quotes/{quote['id']}").status_code == 200
    assert sales.post(f"/quotes/{quote['id']}/send").status_code == 200
    sent = sales.patch(f"/quotes/{quote['id']}", json={"validUntil": later})
    assert sent.status_code == 409 and sent.headers["content-type"].startswith("application/problem+json")
    assert "revise" in sent.text


def test_patch_contract_terms_recomputes_dates_while_active(api: Api) -> None:
    sales, ids = _setup(api)
    service = sales.post("/services", json={"accountId": ids["account"], "productId": ids["SDSL-20"]}).json()
    contract = sales.post("/contracts", json={"accountId": ids["account"], "startDate": "2026-01-15",
                                              "termMonths": 24, "noticeMonths": 3,
                                              "bookedServiceIds": [service["id"]]}).json()
    patched = sales.patch(f"/contracts/{contract['id']}", json={"termMonths": 12, "noticeMonths": 1,
                                                                "autoRenewal": False})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    # 12 months from 15 Jan 2026 end on 14 Jan 2027; the notice must arrive by 14 Dec 2026, reminded 30 days before
    assert (body["endDate"], body["noticeDeadline"], body["reminderDate"], body["autoRenewal"]) == (
        "2027-01-14", "2026-12-14", "2026-11-14", False)
    assert sales.get(f"/services/{service['id']}").json()["contractEnd"] == "2027-01-14"
    renewal = sales.patch(f"/contracts/{contract['id']}", json={"renewalMonths": 6}).json()
    assert (renewal["renewalMonths"], renewal["endDate"], renewal["termMonths"]) == (6, "2027-01-14", 12)
    for change, field in [({"noticeMonths": 12}, "noticeMonths"), ({"termMonths": 0}, "termMonths"),
                          ({"termMonths": 121}, "termMonths"), ({"renewalMonths": None}, "renewalMonths"),
                          ({"autoRenewal": None}, "autoRenewal")]:
        assert _field(sales.patch(f"/contracts/{contract['id']}", json=change)) == field, change
    assert sales.get(f"/contracts/{contract['id']}").json() == renewal  # nothing half-written
    assert sales.patch("/contracts/999999", json={"termMonths": 12}).status_code == 404
    assert sales.post(f"/contracts/{contract['id']}/notice", json={"receivedOn": "2026-12-01"}).status_code == 200
    assert sales.patch(f"/contracts/{contract['id']}", json={"noticeMonths": 2}).status_code == 409


def test_invoices_say_they_are_immutable(api: Api) -> None:
    schema = api.client("sales").get("/openapi.json").json()
    invoice_paths = {path: ops for path, ops in schema["paths"].items() if path.startswith("/api/v1/invoices")}
    assert invoice_paths and not any("patch" in ops for ops in invoice_paths.values())
    assert "immutable" in invoice_paths["/api/v1/invoices/{invoice_id}"]["get"]["description"]
