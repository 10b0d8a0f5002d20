"""Service desk and relationship resources over REST, against a live server on SQLite and PostgreSQL:
incidents, problems, opportunities, campaigns, activities, appointments (collisions, iCalendar) and staff
requests; illegal transitions as 409, bad input as 422 naming the field, unknown ids as 404, roles as 403.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import icalendar

from crm import service_desk
from crm.documents import DocumentLinks, DocumentStore
from tests.api.conftest import Api


def _field(response: httpx.Response) -> str:
    """The field the problem names (the first one)."""
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(body["errors"][0]["field"])


def _customer(client: httpx.Client, name: str = "Müller Datentechnik", sla: str = "gold") -> tuple[int, int]:
    """An account with one contact: (account id, contact id)."""
    account = client.post("/accounts", json={"name": name, "slaClass": sla})
    assert account.status_code == 201, account.text
    account_id = account.json()["id"]
    contact = client.post(f"/accounts/{account_id}/contacts", json={
        "salutation": "Frau", "firstName": "Eva", "lastName": "Klein", "email": f"eva@{account_id}.example.com"})
    assert contact.status_code == 201, contact.text
    return account_id, contact.json()["id"]


def _incident(client: httpx.Client, account_id: int, **extra: Any) -> dict[str, Any]:
    body = {"origin": "phone", "accountId": account_id, "category": "xDSL", "impact": "high", "urgency": "high",
            "summary": "Leitung ausgefallen", "description": "Seit 8 Uhr keine Synchronisation", **extra}
    created = client.post("/incidents", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_incident_life_cycle_log_and_filters(api: Api) -> None:
    clerk = api.client("sales")
    account_id, contact_id = _customer(clerk)
    incident = _incident(clerk, account_id, contactId=contact_id)
    # gold, P1: respond within 15 minutes, resolve within 4 hours
    assert incident["priority"] == "P1" and incident["status"] == "new" and incident["slaState"] == "within"
    assert _at(incident["responseDue"]) - _at(incident["openedAt"]) == timedelta(minutes=15)
    assert _at(incident["resolutionDue"]) - _at(incident["openedAt"]) == timedelta(hours=4)
    assert incident["number"].startswith("I") and incident["log"] == []
    other = _incident(clerk, account_id, impact="low", urgency="low", summary="Rechnung unklar")
    assert other["priority"] == "P4"

    incident_id = incident["id"]
    assigned = clerk.patch(f"/incidents/{incident_id}", json={"assignedGroup": "noc", "assignee": "tom"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned" and assigned.json()["assignedGroup"] == "noc"
    assert assigned.json()["respondedAt"] is not None
    assert clerk.post(f"/incidents/{incident_id}/log", json={"text": "Kunde informiert", "public": True}
                      ).status_code == 201
    entry = clerk.post(f"/incidents/{incident_id}/log", json={"text": "Port 7 am DSLAM tot"})
    assert entry.status_code == 201 and entry.json()["visibility"] == "internal"
    assert entry.json()["author"] == "key:test-sales"
    full = clerk.get(f"/incidents/{incident_id}").json()
    assert [e["text"] for e in full["log"]] == ["Kunde informiert", "Port 7 am DSLAM tot"]
    public = clerk.get(f"/incidents/{incident_id}", params={"publicOnly": "true"}).json()
    assert [e["visibility"] for e in public["log"]] == ["public"]

    listed = clerk.get("/incidents", params={"accountId": account_id, "group": "noc"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == incident_id
    assert clerk.get("/incidents", params={"priority": "P4"}).json()["items"][0]["id"] == other["id"]
    assert clerk.get("/incidents", params={"slaState": "within"}).json()["total"] == 2
    assert clerk.get("/incidents", params={"slaState": "breached"}).json()["total"] == 0
    assert clerk.get("/incidents", params={"q": "rechnung"}).json()["items"][0]["id"] == other["id"]
    paged = clerk.get("/incidents", params={"limit": 1, "offset": 1}).json()
    assert paged["total"] == 2 and len(paged["items"]) == 1 and paged["limit"] == 1 and paged["offset"] == 1
    assert _field(clerk.get("/incidents", params={"slaState": "late"})) == "slaState"

    assert clerk.post(f"/incidents/{incident_id}/status", json={"status": "pending"}).json()["status"] == "pending"
    no_text = clerk.post(f"/incidents/{incident_id}/status", json={"status": "resolved"})
    assert no_text.status_code == 422 and _field(no_text) == "resolution"
    resolved = clerk.post(f"/incidents/{incident_id}/status", json={"status": "resolved",
                                                                   "resolution": "Port getauscht"})
    assert resolved.status_code == 200 and resolved.json()["slaState"] is None
    assert clerk.post(f"/incidents/{incident_id}/status", json={"status": "closed"}).json()["status"] == "closed"

    illegal = clerk.post(f"/incidents/{incident_id}/status", json={"status": "pending"})
    assert illegal.status_code == 409 and _field(illegal) == "status"
    assert "closed" in illegal.json()["detail"]
    assert clerk.patch(f"/incidents/{incident_id}", json={"assignedGroup": "noc"}).status_code == 409
    back_to_new = clerk.post(f"/incidents/{other['id']}/status", json={"status": "new"})
    assert back_to_new.status_code == 409
    unknown = clerk.post(f"/incidents/{incident_id}/status", json={"status": "done"})
    assert unknown.status_code == 422 and _field(unknown) == "status"


def test_sla_state_filter_matches_the_dashboard_rule(api: Api) -> None:
    """Gold P1 resolves within 4 h; at risk once less than a fifth of that is left, breached after it."""
    clerk = api.client("sales")
    account_id, _ = _customer(clerk)
    now = datetime.now(UTC)
    with api.engine.db.transaction() as conn:
        ids = {age: service_desk.open_incident(conn, account_id, f"{age} min alt", impact="high", urgency="high",
                                               now=now - timedelta(minutes=age))
               for age in (10, 200, 300)}
    states = {state: [i["id"] for i in clerk.get("/incidents", params={"slaState": state}).json()["items"]]
              for state in ("within", "at_risk", "breached")}
    assert states == {"within": [ids[10]], "at_risk": [ids[200]], "breached": [ids[300]]}
    assert clerk.get(f"/incidents/{ids[300]}").json()["slaState"] == "breached"
    clerk.post(f"/incidents/{ids[300]}/status", json={"status": "resolved", "resolution": "spät"})
    assert clerk.get("/incidents", params={"slaState": "breached"}).json()["total"] == 0


def test_incident_bad_input_unknown_ids_and_csv(api: Api) -> None:
    clerk = api.client("sales")
    account_id, _ = _customer(clerk)
    _other_account, foreign_contact = _customer(clerk, "Schmidt KG")
    bad_impact = clerk.post("/incidents", json={"origin": "phone", "accountId": account_id, "impact": "huge",
                                                "urgency": "low", "summary": "x"})
    assert bad_impact.status_code == 422 and _field(bad_impact) == "impact"
    foreign = clerk.post("/incidents", json={"origin": "mail", "accountId": account_id, "contactId": foreign_contact,
                                             "impact": "low", "urgency": "low", "summary": "x"})
    assert foreign.status_code == 422 and _field(foreign) == "contactId"
    no_service = clerk.post("/incidents", json={"origin": "mail", "accountId": account_id, "serviceId": 4242,
                                                "impact": "low", "urgency": "low", "summary": "x"})
    assert no_service.status_code == 422 and _field(no_service) == "serviceId"
    no_account = clerk.post("/incidents", json={"origin": "mail", "accountId": 999999, "impact": "low",
                                                "urgency": "low", "summary": "x"})
    assert no_account.status_code == 422 and _field(no_account) == "accountId"
    missing = clerk.post("/incidents", json={"origin": "mail", "accountId": account_id, "impact": "low"})
    assert missing.status_code == 422 and {e["field"] for e in missing.json()["errors"]} == {"urgency", "summary"}
    assert _field(clerk.post("/incidents", json={"origin": "fax", "accountId": account_id, "impact": "low",
                                                 "urgency": "low", "summary": "x"})) == "origin"
    nul = clerk.post("/incidents", json={"origin": "mail", "accountId": account_id, "impact": "low", "urgency": "low",
                                         "summary": "a\u0000b"})
    assert nul.status_code == 422 and _field(nul) == "summary"
    surrogate = clerk.post("/incidents", content=b'{"origin": "mail", "accountId": %d, "impact": "low", '
                           b'"urgency": "low", "summary": "\\ud800"}' % account_id,
                           headers={"content-type": "application/json"})
    assert surrogate.status_code == 422 and _field(surrogate) == "summary"
    assert _field(clerk.get("/incidents", params={"q": "a\x00"})) == "q"
    assert clerk.get("/incidents/999999").status_code == 404
    assert clerk.patch("/incidents/999999", json={"assignedGroup": "noc"}).status_code == 404
    assert clerk.post("/incidents/999999/log", json={"text": "x"}).status_code == 404
    assert clerk.get("/incidents/0").status_code == 422

    _incident(clerk, account_id, summary="Router; defekt")
    exported = clerk.get("/incidents", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    header = lines[0].split(";")
    assert {"number", "priority", "slaState", "resolutionDue"} <= set(header) and len(lines) == 2
    assert '"Router; defekt"' in lines[1]


def test_problem_resolution_resolves_its_incidents(api: Api) -> None:
    clerk = api.client("sales")
    account_id, _ = _customer(clerk)
    first, second, third = (_incident(clerk, account_id, summary=f"Ausfall {n}") for n in range(3))
    clerk.patch(f"/incidents/{second['id']}", json={"assignedGroup": "noc"})
    closed = _incident(clerk, account_id, summary="erledigt")
    clerk.post(f"/incidents/{closed['id']}/status", json={"status": "resolved", "resolution": "ok"})

    created = clerk.post("/problems", json={"title": "DSLAM Nord defekt", "incidentIds": [first["id"], second["id"]]})
    assert created.status_code == 201, created.text
    problem = created.json()
    assert problem["status"] == "open" and {i["id"] for i in problem["incidents"]} == {first["id"], second["id"]}
    problem_id = problem["id"]
    linked = clerk.post(f"/problems/{problem_id}/incidents", json={"incidentId": third["id"]})
    assert linked.status_code == 200 and len(linked.json()["incidents"]) == 3
    not_open = clerk.post(f"/problems/{problem_id}/incidents", json={"incidentId": closed["id"]})
    assert not_open.status_code == 409 and _field(not_open) == "incidentId"
    unknown = clerk.post(f"/problems/{problem_id}/incidents", json={"incidentId": 999999})
    assert unknown.status_code == 422 and _field(unknown) == "incidentId"
    bad_list = clerk.post("/problems", json={"title": "x", "incidentIds": [first["id"], 999999]})
    assert bad_list.status_code == 422 and _field(bad_list) == "incidentIds[1]"
    assert clerk.get("/problems", params={"q": "dslam"}).json()["total"] == 1  # the failed one was rolled back

    patched = clerk.patch(f"/problems/{problem_id}", json={"rootCause": "Netzteil", "workaround": "Umschalten"})
    assert patched.status_code == 200 and patched.json()["rootCause"] == "Netzteil"
    assert patched.json()["workaround"] == "Umschalten"

    assert _field(clerk.post(f"/problems/{problem_id}/resolve", json={"resolution": " "})) == "resolution"
    resolved = clerk.post(f"/problems/{problem_id}/resolve", json={"resolution": "Netzteil ersetzt"})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved" and body["resolvedIncidentIds"] == [first["id"], second["id"], third["id"]]
    for incident in (first, second, third):
        after = clerk.get(f"/incidents/{incident['id']}").json()
        assert after["status"] == "resolved" and "Netzteil ersetzt" in after["resolution"]
    again = clerk.post(f"/problems/{problem_id}/resolve", json={"resolution": "nochmal"})
    assert again.status_code == 409
    assert clerk.post(f"/problems/{problem_id}/incidents", json={"incidentId": closed["id"]}).status_code == 409
    assert clerk.get("/problems/999999").status_code == 404
    assert clerk.post("/problems/999999/resolve", json={"resolution": "x"}).status_code == 404
    assert _field(clerk.post("/problems", json={"title": "  ", "incidentIds": []})) == "title"
    exported = clerk.get("/problems", params={"format": "csv", "status": "resolved"})
    assert exported.headers["content-type"].startswith("text/csv") and "DSLAM Nord defekt" in exported.text


def test_opportunities_stages_and_weighted_pipeline(api: Api) -> None:
    clerk = api.client("sales")
    account_id, contact_id = _customer(clerk)
    base = {"accountId": account_id, "expectedClose": "2030-06-30", "contactId": contact_id}
    big = clerk.post("/opportunities", json={**base, "title": "SDSL Standortvernetzung", "expectedRevenue": "12000.00",
                                             "stage": "proposal"})
    assert big.status_code == 201, big.text
    assert big.json()["probability"] == 50 and big.json()["owner"] == "key:test-sales"
    small = clerk.post("/opportunities", json={**base, "title": "VoIP", "expectedRevenue": "999.99",
                                               "stage": "proposal", "probability": 33}).json()
    clerk.post("/opportunities", json={**base, "title": "Housing", "expectedRevenue": "100.00"})

    pipeline = clerk.get("/opportunities/pipeline").json()
    by_stage = {s["stage"]: s for s in pipeline["stages"]}
    # 12000 × 50 % + 999.99 × 33 % = 6000 + 329.9967 → 6330.00 (rounded once per stage)
    assert by_stage["proposal"] == {"stage": "proposal", "count": 2, "revenue": "12999.99", "weighted": "6330.00"}
    assert by_stage["lead"]["weighted"] == "10.00" and pipeline["weighted"] == "6340.00"
    assert clerk.get("/opportunities/pipeline", params={"closeUntil": "2029-01-01"}).json()["weighted"] == "0.00"

    moved = clerk.post(f"/opportunities/{small['id']}/stage", json={"stage": "won"})
    assert moved.status_code == 200 and moved.json()["stage"] == "won" and moved.json()["probability"] == 100
    assert moved.json()["previousStage"] == "proposal"
    final = clerk.post(f"/opportunities/{small['id']}/stage", json={"stage": "lost"})
    assert final.status_code == 409 and _field(final) == "stage"
    unknown_stage = clerk.post(f"/opportunities/{big.json()['id']}/stage", json={"stage": "maybe"})
    assert unknown_stage.status_code == 422 and _field(unknown_stage) == "stage"
    assert clerk.post("/opportunities/999999/stage", json={"stage": "won"}).status_code == 404
    assert clerk.get("/opportunities/999999").status_code == 404
    assert clerk.get(f"/opportunities/{small['id']}").json()["title"] == "VoIP"
    won_at_once = clerk.post("/opportunities", json={**base, "title": "x", "expectedRevenue": "1", "stage": "won"})
    assert won_at_once.status_code == 422 and _field(won_at_once) == "stage"
    assert _field(clerk.post("/opportunities", json={**base, "title": "x", "expectedRevenue": "-1"})
                  ) == "expectedRevenue"
    assert _field(clerk.post("/opportunities", json={**base, "title": "x", "expectedRevenue": "1",
                                                     "campaignId": 4711})) == "campaignId"

    listed = clerk.get("/opportunities", params={"stage": "proposal"}).json()
    assert listed["total"] == 1 and listed["items"][0]["expectedRevenue"] == "12000.00"
    assert clerk.get("/opportunities", params={"q": "voip"}).json()["items"][0]["stage"] == "won"
    exported = clerk.get("/opportunities", params={"format": "csv", "decimalComma": "true"})
    assert exported.headers["content-type"].startswith("text/csv") and "12000,00" in exported.text


def test_campaigns_members_and_activities_timeline(api: Api) -> None:
    clerk = api.client("sales")
    account_id, contact_id = _customer(clerk)
    other_account, other_contact = _customer(clerk, "Schmidt KG")
    created = clerk.post("/campaigns", json={"name": "CeBIT 2030", "kind": "trade_fair", "startsOn": "2030-03-01",
                                             "endsOn": "2030-03-05"})
    assert created.status_code == 201, created.text
    campaign_id = created.json()["id"]
    duplicate = clerk.post("/campaigns", json={"name": "CeBIT 2030", "kind": "trade_fair",
                                               "startsOn": "2030-03-01", "endsOn": "2030-03-05"})
    assert duplicate.status_code == 422 and _field(duplicate) == "name"
    backwards = clerk.post("/campaigns", json={"name": "X", "kind": "mailing", "startsOn": "2030-03-05",
                                               "endsOn": "2030-03-01"})
    assert _field(backwards) == "endsOn"
    added = clerk.post(f"/campaigns/{campaign_id}/members", json={"contactIds": [contact_id, other_contact]})
    assert added.status_code == 200 and added.json()["added"] == 2
    again = clerk.post(f"/campaigns/{campaign_id}/members", json={"contactIds": [contact_id]}).json()
    assert again["added"] == 0 and {m["accountName"] for m in again["members"]} == {"Müller Datentechnik",
                                                                                    "Schmidt KG"}
    unknown = clerk.post(f"/campaigns/{campaign_id}/members", json={"contactIds": [999999]})
    assert unknown.status_code == 422 and _field(unknown) == "contactIds"
    assert clerk.post("/campaigns/999999/members", json={"contactIds": [contact_id]}).status_code == 404
    assert clerk.get("/campaigns/999999").status_code == 404
    listed = clerk.get("/campaigns", params={"q": "cebit"}).json()
    assert listed["total"] == 1 and listed["items"][0]["memberCount"] == 2
    assert clerk.get("/campaigns", params={"kind": "webinar"}).json()["total"] == 0

    call = clerk.post("/activities", json={"kind": "call", "subject": "Messegespräch", "body": "Interesse an SDSL",
                                           "contactId": contact_id, "campaignId": campaign_id})
    assert call.status_code == 201, call.text
    assert call.json()["accountId"] == account_id and call.json()["author"] == "key:test-sales"
    clerk.post("/activities", json={"kind": "note", "subject": "Bonität geprüft", "accountId": account_id,
                                    "occurredAt": "2020-01-01T09:00:00+01:00"})
    clerk.post("/activities", json={"kind": "visit", "subject": "Vor Ort", "accountId": other_account})
    timeline = clerk.get(f"/accounts/{account_id}/timeline").json()
    assert [a["subject"] for a in timeline["items"]] == ["Messegespräch", "Bonität geprüft"]
    assert timeline["total"] == 2
    assert clerk.get("/activities", params={"contactId": contact_id}).json()["items"][0]["kind"] == "call"
    assert clerk.get("/activities", params={"kind": "visit"}).json()["items"][0]["accountId"] == other_account
    assert clerk.get("/activities", params={"campaignId": campaign_id}).json()["total"] == 1
    assert clerk.get("/accounts/999999/timeline").status_code == 404
    assert clerk.get(f"/activities/{call.json()['id']}").json() == call.json()
    assert clerk.get("/activities/999999").status_code == 404
    nowhere = clerk.post("/activities", json={"kind": "call", "subject": "?"})
    assert nowhere.status_code == 422 and _field(nowhere) == "accountId"
    assert _field(clerk.post("/activities", json={"kind": "fax", "subject": "?", "accountId": account_id})) == "kind"
    mismatch = clerk.post("/activities", json={"kind": "call", "subject": "?", "accountId": other_account,
                                               "contactId": contact_id})
    assert _field(mismatch) == "contactId"
    naive = clerk.post("/activities", json={"kind": "call", "subject": "?", "accountId": account_id,
                                            "occurredAt": "2020-01-01T09:00:00"})
    assert naive.status_code == 422 and _field(naive) == "occurredAt"
    exported = clerk.get("/activities", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv") and "Messegespräch" in exported.text


def test_appointments_collisions_reschedule_cancel_and_ics(api: Api) -> None:
    clerk = api.client("sales")
    account_id, contact_id = _customer(clerk)
    slot = {"accountId": account_id, "contactId": contact_id, "place": "Kundenbüro München"}
    first = clerk.post("/appointments", json={**slot, "topic": "Angebot besprechen", "participants": ["anna", "bob"],
                                              "startsAt": "2030-05-06T09:00:00+02:00",
                                              "endsAt": "2030-05-06T10:00:00+02:00"})
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    assert first.json()["participants"] == ["anna", "bob"] and first.json()["startsAt"].startswith("2030-05-06T07:00")
    clash = clerk.post("/appointments", json={"topic": "Technik", "participants": ["carl", "bob"],
                                              "startsAt": "2030-05-06T07:30:00Z", "endsAt": "2030-05-06T08:30:00Z"})
    assert clash.status_code == 409, clash.text
    problem = clash.json()
    assert problem["errors"][0]["appointmentId"] == first_id and problem["errors"][0]["participant"] == "bob"
    assert f"appointment {first_id}" in problem["detail"]
    # half-open ranges: the next meeting may start when the first ends
    second = clerk.post("/appointments", json={"topic": "Technik", "participants": ["bob"],
                                               "startsAt": "2030-05-06T08:00:00Z", "endsAt": "2030-05-06T09:00:00Z"})
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    into_first = clerk.patch(f"/appointments/{second_id}", json={"startsAt": "2030-05-06T06:30:00Z",
                                                                 "endsAt": "2030-05-06T07:30:00Z"})
    assert into_first.status_code == 409 and into_first.json()["errors"][0]["appointmentId"] == first_id
    moved = clerk.patch(f"/appointments/{second_id}", json={"startsAt": "2030-05-07T08:00:00Z",
                                                            "endsAt": "2030-05-07T09:00:00Z"})
    assert moved.status_code == 200 and moved.json()["startsAt"].startswith("2030-05-07T08:00")

    listed = clerk.get("/appointments", params={"participant": "bob", "from": "2030-05-07T00:00:00Z",
                                                "until": "2030-05-08T00:00:00Z"}).json()
    assert [a["id"] for a in listed["items"]] == [second_id] and listed["items"][0]["participants"] == ["bob"]
    assert clerk.get("/appointments", params={"participant": "anna"}).json()["total"] == 1
    exported = clerk.get("/appointments", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv") and "anna,bob" in exported.text

    cancelled = clerk.post(f"/appointments/{first_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    twice = clerk.post(f"/appointments/{first_id}/cancel")
    assert twice.status_code == 409 and _field(twice) == "status"
    move_cancelled = clerk.patch(f"/appointments/{first_id}", json={"startsAt": "2030-06-01T08:00:00Z",
                                                                    "endsAt": "2030-06-01T09:00:00Z"})
    assert move_cancelled.status_code == 409
    # the freed time can be booked again
    assert clerk.post("/appointments", json={"topic": "Ersatz", "participants": ["bob"],
                                             "startsAt": "2030-05-06T07:00:00Z",
                                             "endsAt": "2030-05-06T08:00:00Z"}).status_code == 201

    # the clerk who booked is no participant: the calendar entry is for the participants and managers
    assert clerk.get(f"/appointments/{first_id}.ics").status_code == 403
    single = api.client("manager").get(f"/appointments/{first_id}.ics")
    assert single.status_code == 200 and single.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(single.content)
    (event,) = calendar.walk("VEVENT")
    assert str(event["summary"]) == "Angebot besprechen" and str(event["status"]) == "CANCELLED"
    assert str(event["uid"]) == f"appointment-{first_id}@silverflow"
    assert event.decoded("dtstart") == datetime(2030, 5, 6, 7, 0, tzinfo=UTC)
    assert str(event["location"]) == "Kundenbüro München"
    assert str(event["attendee"]) == f"mailto:eva@{account_id}.example.com"
    manager = api.client("manager")
    assert clerk.get("/appointments.ics", params={"participant": "bob"}).status_code == 403  # bob's, not hers
    bobs = icalendar.Calendar.from_ical(manager.get("/appointments.ics", params={"participant": "bob"}).content)
    assert sorted(str(e["summary"]) for e in bobs.walk("VEVENT")) == ["Angebot besprechen", "Ersatz", "Technik"]
    nobody = icalendar.Calendar.from_ical(manager.get("/appointments.ics", params={"participant": "zoe"}).content)
    assert nobody.walk("VEVENT") == []
    # a colleague sees that bob is busy, not with whom or why; the collision does not tell either
    seen = clerk.get("/appointments", params={"participant": "bob"}).json()["items"]
    assert {a["topic"] for a in seen} == {"Belegt"} and {a["place"] for a in seen} == {None}
    assert "Ersatz" in {a["topic"] for a in manager.get("/appointments", params={"participant": "bob"}).json()["items"]}
    private = clerk.post("/appointments", json={"topic": "Noch ein Termin", "participants": ["bob"],
                                                "startsAt": "2030-05-06T07:15:00Z", "endsAt": "2030-05-06T07:45:00Z"})
    assert private.status_code == 409 and private.json()["errors"][0]["topic"] == "Belegt"
    assert "Ersatz" not in private.text

    assert clerk.get("/appointments/999999").status_code == 404
    assert clerk.get("/appointments/999999.ics").status_code == 404
    assert clerk.post("/appointments/999999/cancel").status_code == 404
    naive = clerk.post("/appointments", json={"topic": "x", "participants": ["a"], "startsAt": "2030-01-01T10:00:00",
                                              "endsAt": "2030-01-01T11:00:00Z"})
    assert naive.status_code == 422 and _field(naive) == "startsAt"
    backwards = clerk.post("/appointments", json={"topic": "x", "participants": ["a"],
                                                  "startsAt": "2030-01-01T10:00:00Z", "endsAt": "2030-01-01T09:00:00Z"})
    assert backwards.status_code == 422 and _field(backwards) == "endsAt"
    blank = clerk.post("/appointments", json={"topic": "x", "participants": [" "],
                                              "startsAt": "2030-01-01T10:00:00Z", "endsAt": "2030-01-01T11:00:00Z"})
    assert blank.status_code == 422 and _field(blank) == "participants"
    assert clerk.get("/appointments.ics").status_code == 422


def test_staff_requests_rules_decisions_and_privacy(api: Api, tmp_path: Path) -> None:
    clerk, manager = api.client("sales"), api.client("manager")
    me = "key:test-sales"
    entry = clerk.post("/staff/time-entries", json={"workDate": "2030-05-06", "project": "Kunde Müller",
                                                    "hours": "8.00"})
    assert entry.status_code == 201 and entry.json()["employee"] == me and entry.json()["status"] == "submitted"
    too_long = clerk.post("/staff/time-entries", json={"workDate": "2030-05-06", "project": "Intern", "hours": "2.5"})
    assert too_long.status_code == 422 and _field(too_long) == "hours"

    with api.engine.db.transaction() as conn:
        receipt = DocumentStore(tmp_path).store(conn, b"%PDF-1.4 hotel", "hotel.pdf", "application/pdf",
                                                DocumentLinks(), uploaded_by=me)
    claim = clerk.post("/staff/expense-claims", json={"purpose": "Messe", "tripStart": "2030-03-01",
                                                      "tripEnd": "2030-03-02", "items": [
        {"category": "hotel", "description": "Hotel", "amount": "120.50", "receiptDocumentId": receipt},
        {"category": "per_diem", "description": "Tagegeld", "amount": "28.00"}]})
    assert claim.status_code == 201, claim.text
    assert claim.json()["total"] == "148.50" and [i["lineNo"] for i in claim.json()["items"]] == [1, 2]
    no_receipt = clerk.post("/staff/expense-claims", json={"purpose": "Messe", "tripStart": "2030-03-01",
                                                           "tripEnd": "2030-03-02", "items": [
        {"category": "per_diem", "description": "Tagegeld", "amount": "28.00"},
        {"category": "hotel", "description": "Hotel", "amount": "99.00"}]})
    assert no_receipt.status_code == 422 and _field(no_receipt) == "items[1].receiptDocumentId"

    no_entitlement = clerk.post("/staff/vacation-requests", json={"firstDay": "2030-07-01", "lastDay": "2030-07-05"})
    assert no_entitlement.status_code == 422 and _field(no_entitlement) == "employee"
    assert clerk.put("/staff/vacation-entitlements", json={"employee": me, "year": 2030, "days": "30"}
                     ).status_code == 403
    assert manager.put("/staff/vacation-entitlements", json={"employee": me, "year": 2030, "days": "30"}
                       ).json()["remainingDays"] == "30.0"
    vacation = clerk.post("/staff/vacation-requests", json={"firstDay": "2030-07-01", "lastDay": "2030-07-07"})
    assert vacation.status_code == 201, vacation.text
    assert vacation.json()["days"] == "5.0" and vacation.json()["remainingDays"] == "25.0"
    overlap = clerk.post("/staff/vacation-requests", json={"firstDay": "2030-07-05", "lastDay": "2030-07-08"})
    assert overlap.status_code == 422 and _field(overlap) == "firstDay"
    assert clerk.get("/staff/vacation-balance", params={"year": 2030}).json()["remainingDays"] == "25.0"
    assert clerk.get("/staff/vacation-balance", params={"year": 2031}).status_code == 404

    sick = clerk.post("/staff/sick-notes", json={"firstDay": "2030-02-03", "lastDay": "2030-02-07"})
    assert sick.status_code == 201 and sick.json()["certificateDocumentId"] is None
    sick_id = sick.json()["id"]
    uncertified = manager.post(f"/staff/sick-notes/{sick_id}/decision", json={"approve": True})
    assert uncertified.status_code == 409 and _field(uncertified) == "certificateDocumentId"
    assert clerk.post(f"/staff/sick-notes/{sick_id}/certificate", json={"documentId": receipt}).status_code == 200
    assert manager.post(f"/staff/sick-notes/{sick_id}/decision", json={"approve": True}).json()["status"] == "approved"

    entry_id = entry.json()["id"]
    assert clerk.post(f"/staff/time-entries/{entry_id}/decision", json={"approve": True}).status_code == 403
    approved = manager.post(f"/staff/time-entries/{entry_id}/decision", json={"approve": True})
    assert approved.status_code == 200 and approved.json()["decidedBy"] == "key:test-manager"
    decided_twice = manager.post(f"/staff/time-entries/{entry_id}/decision", json={"approve": False})
    assert decided_twice.status_code == 409 and _field(decided_twice) == "status"
    cancelled = clerk.post(f"/staff/vacation-requests/{vacation.json()['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert clerk.get("/staff/vacation-balance", params={"year": 2030}).json()["remainingDays"] == "30.0"
    assert clerk.post(f"/staff/vacation-requests/{vacation.json()['id']}/cancel").status_code == 409

    # personal data: a clerk sees and files only their own requests; a manager anyone's
    other = manager.post("/staff/time-entries", json={"employee": "erika", "workDate": "2030-05-06",
                                                      "project": "Intern", "hours": "4"})
    assert other.status_code == 201 and other.json()["employee"] == "erika"
    assert clerk.post("/staff/time-entries", json={"employee": "erika", "workDate": "2030-05-07",
                                                   "project": "Intern", "hours": "1"}).status_code == 403
    assert clerk.get("/staff/time-entries", params={"employee": "erika"}).status_code == 403
    assert clerk.get(f"/staff/time-entries/{other.json()['id']}").status_code == 403
    mine = clerk.get("/staff/time-entries").json()
    assert mine["total"] == 1 and mine["items"][0]["employee"] == me
    everyone = manager.get("/staff/time-entries", params={"from": "2030-05-06", "until": "2030-05-06"}).json()
    assert everyone["total"] == 2
    assert manager.get("/staff/time-entries", params={"status": "approved"}).json()["items"][0]["id"] == entry_id
    exported = manager.get("/staff/expense-claims", params={"format": "csv", "decimalComma": "true"})
    assert exported.headers["content-type"].startswith("text/csv") and "148,50" in exported.text
    assert manager.get("/staff/expense-claims/999999").status_code == 404
    assert manager.get("/staff/parking-tickets/1").status_code == 422
    assert _field(clerk.post("/staff/sick-notes", json={"firstDay": "2030-02-07", "lastDay": "2030-02-03"})
                  ) == "lastDay"


def test_roles_and_authentication(api: Api) -> None:
    clerk, designer = api.client("sales"), api.client("designer")
    account_id, _ = _customer(clerk)
    body = {"origin": "rest", "accountId": account_id, "impact": "low", "urgency": "low", "summary": "x"}
    assert designer.post("/incidents", json=body).status_code == 403
    assert designer.post("/appointments", json={"topic": "x", "participants": ["a"],
                                                "startsAt": "2030-01-01T10:00:00Z",
                                                "endsAt": "2030-01-01T11:00:00Z"}).status_code == 403
    assert designer.get("/incidents").status_code == 200  # reads are for every authenticated caller
    assert api.client().get("/incidents").status_code == 401
    assert api.client("integration").post("/incidents", json=body).status_code == 201


def test_patch_routes_and_reroutes_incidents_like_the_board(api: Api) -> None:
    clerk = api.client("servicedesk")
    account_id, _ = _customer(clerk)
    incident_id = _incident(clerk, account_id)["id"]
    first = clerk.patch(f"/incidents/{incident_id}", json={"assignedGroup": "servicedesk", "assignee": "tom"})
    assert first.status_code == 200, first.text
    responded = first.json()["respondedAt"]
    rerouted = clerk.patch(f"/incidents/{incident_id}", json={"assignedGroup": "support2"})
    assert rerouted.status_code == 200, rerouted.text
    assert (rerouted.json()["status"], rerouted.json()["assignedGroup"], rerouted.json()["assignee"]) == (
        "assigned", "support2", None)
    assert rerouted.json()["respondedAt"] == responded  # the first response stays the first
    person = clerk.patch(f"/incidents/{incident_id}", json={"assignee": "eva"}).json()
    assert (person["assignedGroup"], person["assignee"]) == ("support2", "eva")
    assert _field(clerk.patch(f"/incidents/{incident_id}", json={"assignedGroup": " "})) == "assignedGroup"

    clerk.post(f"/incidents/{incident_id}/status", json={"status": "pending"})
    back = clerk.patch(f"/incidents/{incident_id}", json={"assignee": "tom"}).json()
    assert (back["status"], back["assignedGroup"], back["assignee"]) == ("assigned", "support2", "tom")
    unrouted = _incident(clerk, account_id, summary="ohne Gruppe")
    no_group = clerk.patch(f"/incidents/{unrouted['id']}", json={"assignee": "tom"})
    assert no_group.status_code == 422 and _field(no_group) == "assignedGroup"
    clerk.post(f"/incidents/{incident_id}/status", json={"status": "resolved", "resolution": "ok"})
    clerk.post(f"/incidents/{incident_id}/status", json={"status": "closed"})
    closed = clerk.patch(f"/incidents/{incident_id}", json={"assignedGroup": "servicedesk"})
    assert closed.status_code == 409 and _field(closed) == "status"


def test_patch_opportunity_facts_but_not_once_closed(api: Api) -> None:
    clerk, manager = api.client("sales"), api.client("manager")
    account_id, _contact_id = _customer(clerk)
    product_id = manager.post("/products", json={"code": "VOIP-T", "name": "VoIP Trunk", "category": "voice",
                                                 "kind": "recurring_monthly", "listPrice": "29.00"}).json()["id"]
    created = clerk.post("/opportunities", json={"accountId": account_id, "title": "VoIP", "stage": "proposal",
                                                 "expectedClose": "2030-06-30", "expectedRevenue": "1000.00"}).json()
    patched = clerk.patch(f"/opportunities/{created['id']}", json={
        "title": "VoIP-Anlage Zentrale", "expectedRevenue": "2500.50", "probability": 70, "expectedClose": "2030-09-30",
        "owner": "clara", "productId": product_id})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["title"], body["expectedRevenue"], body["probability"], body["expectedClose"], body["owner"],
            body["productId"], body["stage"]) == ("VoIP-Anlage Zentrale", "2500.50", 70, "2030-09-30", "clara",
                                                  product_id, "proposal")
    proposal = {s["stage"]: s for s in clerk.get("/opportunities/pipeline").json()["stages"]}["proposal"]
    assert proposal["weighted"] == "1750.35"  # 2500.50 × 70 %
    assert clerk.patch(f"/opportunities/{created['id']}", json={"probability": None}).json()["probability"] == 50
    for change, field in [({"title": " "}, "title"), ({"expectedRevenue": "-1"}, "expectedRevenue"),
                          ({"productId": 999999}, "productId"), ({"probability": 101}, "probability"),
                          ({"expectedClose": None}, "expectedClose"), ({"title": "a\u0000b"}, "title")]:
        refused = clerk.patch(f"/opportunities/{created['id']}", json=change)
        assert refused.status_code == 422 and _field(refused) == field, (change, refused.text)
    unchanged = clerk.patch(f"/opportunities/{created['id']}", json={"stage": "won"}).json()  # the stage has its action
    assert unchanged["stage"] == "proposal" and unchanged["title"] == "VoIP-Anlage Zentrale"
    assert clerk.patch("/opportunities/999999", json={"title": "x"}).status_code == 404
    assert clerk.post(f"/opportunities/{created['id']}/stage", json={"stage": "lost"}).status_code == 200
    closed = clerk.patch(f"/opportunities/{created['id']}", json={"expectedRevenue": "1.00"})
    assert closed.status_code == 409 and _field(closed) == "stage"
    assert api.client("designer").patch(f"/opportunities/{created['id']}", json={"title": "x"}).status_code == 403
    assert clerk.get(f"/opportunities/{created['id']}").json()["expectedRevenue"] == "2500.50"


def test_patch_campaign_and_activity(api: Api) -> None:
    clerk = api.client("sales")
    account_id, contact_id = _customer(clerk)
    fair = clerk.post("/campaigns", json={"name": "CeBIT 2030", "kind": "trade_fair", "startsOn": "2030-03-01",
                                          "endsOn": "2030-03-05"}).json()
    mailing = clerk.post("/campaigns", json={"name": "Glasfaser-Mailing", "kind": "mailing", "startsOn": "2030-04-01",
                                             "endsOn": "2030-04-30"}).json()
    clerk.post(f"/campaigns/{fair['id']}/members", json={"contactIds": [contact_id]})
    patched = clerk.patch(f"/campaigns/{fair['id']}", json={"name": "CeBIT 2030 Hannover", "kind": "event",
                                                            "endsOn": "2030-03-06", "description": "Halle 13"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["kind"], body["startsOn"], body["endsOn"], body["description"]) == (
        "CeBIT 2030 Hannover", "event", "2030-03-01", "2030-03-06", "Halle 13")
    assert [m["id"] for m in body["members"]] == [contact_id]
    assert clerk.patch(f"/campaigns/{fair['id']}", json={"name": "CeBIT 2030 Hannover"}).status_code == 200  # itself
    for change, field in [({"name": "Glasfaser-Mailing"}, "name"), ({"startsOn": "2030-03-07"}, "endsOn"),
                          ({"kind": "party"}, "kind"), ({"name": None}, "name"), ({"startsOn": None}, "startsOn")]:
        refused = clerk.patch(f"/campaigns/{fair['id']}", json=change)
        assert refused.status_code == 422 and _field(refused) == field, (change, refused.text)
    assert clerk.get(f"/campaigns/{fair['id']}").json() == body  # nothing half-written
    assert clerk.patch("/campaigns/999999", json={"kind": "event"}).status_code == 404

    call = clerk.post("/activities", json={"kind": "call", "subject": "Messegespräch", "contactId": contact_id,
                                           "campaignId": fair["id"], "occurredAt": "2030-03-02T10:00:00+01:00"}).json()
    edited = clerk.patch(f"/activities/{call['id']}", json={"subject": "Rückruf vereinbart",
                                                            "body": "Zeile 1\n  Zeile 2", "campaignId": mailing["id"]})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["subject"], edited.json()["body"], edited.json()["campaignId"]) == (
        "Rückruf vereinbart", "Zeile 1\n  Zeile 2", mailing["id"])
    assert {key: edited.json()[key] for key in ("author", "occurredAt", "accountId", "contactId", "kind")} == {
        key: call[key] for key in ("author", "occurredAt", "accountId", "contactId", "kind")}
    assert clerk.get("/activities", params={"campaignId": mailing["id"]}).json()["total"] == 1
    unlinked = clerk.patch(f"/activities/{call['id']}", json={"campaignId": None, "author": "someone"}).json()
    assert unlinked["campaignId"] is None and unlinked["author"] == call["author"]
    for change, field in [({"subject": ""}, "subject"), ({"subject": None}, "subject"),
                          ({"campaignId": 999999}, "campaignId"), ({"body": "a\u0000"}, "body")]:
        refused = clerk.patch(f"/activities/{call['id']}", json=change)
        assert refused.status_code == 422 and _field(refused) == field, (change, refused.text)
    assert clerk.patch("/activities/999999", json={"subject": "x"}).status_code == 404
    assert api.client("hr").patch(f"/activities/{call['id']}", json={"subject": "x"}).status_code == 200
    assert clerk.get(f"/accounts/{account_id}/timeline").json()["items"][0]["subject"] == "x"
