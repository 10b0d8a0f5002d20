"""The monthly QoS mail (issue 14): the timer-started ``sla-report`` process mails every customer with incidents in
the previous month his figures — incidents, responses and resolutions within the SLA, the violations — read back
from the SMTP server the app sends through.

The month of incident history is seeded through ``crm.service_desk`` (a test cannot live through a month); the
report itself starts where it really starts: the deployed start timer firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm import service_desk as sd
from crm.accounts import ContactInput, create_account, create_contact
from crm.business_calendar import BERLIN

from .conftest import World

MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
          "November", "Dezember")


def test_each_customer_gets_the_figures_of_last_month(world: World) -> None:
    first = datetime.now(BERLIN).date().replace(day=1)
    last_month = first - timedelta(days=1)
    day = datetime(last_month.year, last_month.month, 10, tzinfo=UTC)
    with world.api.engine.db.transaction() as conn:
        gold = create_account(conn, "Rechenzentrum Nord", sla_class="gold")
        create_contact(conn, ContactInput(last_name="Weber", salutation="Herr", email="weber@rz-nord.example"), gold)
        quiet = create_account(conn, "Stille GmbH", sla_class="gold")
        create_contact(conn, ContactInput(last_name="Still", email="still@stille.example"), quiet)
        on_time = sd.open_incident(conn, gold, "Switch", impact="high", urgency="high", now=day + timedelta(hours=9))
        sd.add_log_entry(conn, on_time, "anna", "Wir sind dran", "public", day + timedelta(hours=9, minutes=5))
        sd.resolve_incident(conn, on_time, "Switch getauscht", day + timedelta(hours=10))
        late_answer = sd.open_incident(conn, gold, "DNS", impact="high", urgency="high", now=day + timedelta(hours=12))
        sd.add_log_entry(conn, late_answer, "anna", "Sorry", "public", day + timedelta(hours=13))
        sd.resolve_incident(conn, late_answer, "Zone repariert", day + timedelta(hours=14))
        still_open = sd.open_incident(conn, gold, "Strom", impact="high", urgency="high",
                                      now=day + timedelta(hours=15))
        sd.add_log_entry(conn, still_open, "bert", "Unterwegs", "public", day + timedelta(hours=15, minutes=10))
        numbers = {i: str(sd.get_incident(conn, i).number) for i in (late_answer, still_open)}
        sd.open_incident(conn, quiet, "Neu diesen Monat", impact="low", urgency="low")  # not last month's
    [start] = [j for j in world.api.client("admin").get("/jobs", params={"kind": "timer-start"}).json()
               if j["processKey"] == "sla-report"]
    due = datetime.fromisoformat(start["dueAt"].replace("Z", "+00:00"))
    assert (due.day, due.hour) == (1, 6) and due > datetime.now(UTC)  # the next first of a month
    world.api.engine.fire_due_timers(now=due + timedelta(minutes=1))

    label = f"{MONTHS[last_month.month - 1]} {last_month.year}"
    report = world.wait_for(lambda: next((m for m in world.inbox.messages if "Servicebericht" in str(m["Subject"])),
                                         None), "the SLA report mail")
    assert str(report["Subject"]) == f"Ihr Servicebericht {label}: 3 Störungen, 2 SLA-Verletzungen"
    assert "weber@rz-nord.example" in str(report["To"])
    text = report.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Sehr geehrter Herr Weber,")
    for line in ("Gemeldete Störungen:            3", "davon gelöst:                   2",
                 "Reaktion innerhalb der SLA:     2 von 3", "Lösung innerhalb der SLA:       2 von 3",
                 f"- {numbers[late_answer]} (P1): Reaktion verspätet",
                 f"- {numbers[still_open]} (P1): Lösung verspätet"):
        assert line in text, text
    def runs() -> list[str]:
        items = world.api.client("admin").get("/process-instances", params={"limit": 200}).json()["items"]
        return [i["state"] for i in items if i["processKey"] == "sla-report"]
    world.wait_for(lambda: runs() == ["completed"], "one report run, completed")
    assert not [m for m in world.inbox.messages if "still@stille.example" in str(m["To"])]
