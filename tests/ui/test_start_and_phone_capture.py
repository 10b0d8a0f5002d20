"""The process start page and the service desk's phone capture, over real HTTP (Uvicorn on loopback with its
job worker, SQLite and PostgreSQL) and once each in Chromium: /start lists what the user may begin and lands on
its first form; a phone call starts the ``incident`` process, whose task then waits in the routed group's inbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.app import shipped_registry
from crm.accounts import ContactInput, create_account, create_contact
from crm.schema import incident
from engine.queries import InstanceFilter
from tests.support.live_app import Api, live_app
from tests.support.sessions import login, wait_for

ROOT = Path(__file__).parents[2]
PASSWORD = "start-password"
USERS = {"anna": (["clerk"], ["staff"]), "sina": (["clerk"], ["servicedesk"]), "sven": (["clerk"], ["support2"]),
         "chefin": (["manager"], ["management"]), "gast": (["designer"], [])}


def _self_service(key: str, name: str, lane: str) -> bytes:
    """A one-form process begun by the group ``lane`` (the shipped admin processes change under other work; the
    start page must not depend on them)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d_{key}" targetNamespace="t">
  <bpmn:collaboration id="c_{key}"><bpmn:participant id="p_{key}" name="{name}" processRef="{key}" />
  </bpmn:collaboration>
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:laneSet id="ls_{key}"><bpmn:lane id="l_{key}" name="{lane}">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>fill</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start" name="Beginn"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="fill" name="Angaben machen">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formKey" value="self-service-note" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="Ende"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fill" />
    <bpmn:sequenceFlow id="f2" sourceRef="fill" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>""".encode()


NOTE_FORM = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Notiz", "type": "object",
    "properties": {"note": {"type": "string", "minLength": 1, "title": "Notiz"}},
    "required": ["note"], "additionalProperties": False}).encode()


def _deploy_self_service(app: Api) -> None:
    """``day-note`` is begun by staff, ``budget-note`` by management."""
    app.engine.deploy([("day-note.bpmn", _self_service("day-note", "Tagesnotiz", "staff")),
                       ("budget-note.bpmn", _self_service("budget-note", "Budgetnotiz", "management"))],
                      [("self-service-note.json", NOTE_FORM)], deployed_by="designer")


def _deploy(app: Api, *keys: str) -> None:
    files = [(f"{key}.bpmn", (ROOT / "processes" / f"{key}.bpmn").read_bytes()) for key in keys]
    forms = [(p.name, p.read_bytes()) for p in sorted((ROOT / "forms").glob("*.json"))
             if p.stem.split("-")[0] in {k.split("-")[0] for k in keys}]
    app.engine.deploy(files, forms, deployed_by="designer")


def _login(base_url: str, user: str) -> tuple[httpx.Client, str]:
    return login(base_url, user, PASSWORD)


@pytest.fixture
def desk(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, dict[str, Any]]]:
    """The live app with the shipped connectors (the incident process records through crm.*), users and a
    customer with one contact."""
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    with live_app(db_url, shipped_registry) as app:
        with app.engine.db.transaction() as conn:
            for name, (roles, groups) in USERS.items():
                app.identity.add_user(conn, name, PASSWORD, roles, groups)
            account_id = create_account(conn, "Muster Netz GmbH", sla_class="gold")
            contact_id = create_contact(conn, ContactInput("Weber", "Herr", "Karl", phone="030 1234567"), account_id)
            number = str(conn.execute(sa.text(f"SELECT number FROM crm_account WHERE id = {account_id}")).scalar())
        yield app, {"account_id": account_id, "contact_id": contact_id, "number": number}


def test_start_page_lists_what_the_user_may_start_and_lands_on_the_first_form(desk: tuple[Api, Any]) -> None:
    app, _customer = desk
    _deploy_self_service(app)
    anna, token = _login(app.base_url, "anna")
    page = anna.get("/start")
    assert page.status_code == 200
    assert 'data-process="day-note"' in page.text and 'data-process="budget-note"' not in page.text  # lanes
    assert '<label for="business-key-day-note"' in page.text

    refused = anna.post("/start", data={"process": "budget-note", "csrf_token": token})
    assert refused.status_code == 422 and "den Sie starten dürfen" in refused.text
    assert anna.post("/start", data={"process": "day-note"}).status_code == 403  # no CSRF token
    too_long = anna.post("/start", data={"process": "day-note", "business_key": "x" * 201,
                                         "csrf_token": token})
    assert too_long.status_code == 422 and "höchstens 200 Zeichen" in too_long.text
    assert not app.engine.list_tasks()

    started = anna.post("/start", data={"process": "day-note", "business_key": "EMP-7",
                                        "csrf_token": token})
    assert started.status_code == 303 and started.headers["location"].startswith("/tasks/")
    [task] = app.engine.list_tasks()
    assert started.headers["location"] == f"/tasks/{task.id}" and task.assignee == "anna"
    instance = app.engine.get_instance(task.instance_id)
    assert (instance.business_key, instance.process_key) == ("EMP-7", "day-note")
    assert 'name="note"' in anna.get(started.headers["location"]).text

    # a manager may start any process; where the first step is not theirs they land on the instance page
    chefin, chef_token = _login(app.base_url, "chefin")
    assert 'data-process="budget-note"' in chefin.get("/start").text
    elsewhere = chefin.post("/start", data={"process": "day-note", "csrf_token": chef_token})
    assert elsewhere.status_code == 303 and elsewhere.headers["location"].startswith("/instances/")
    guest, _token = _login(app.base_url, "gast")
    assert guest.get("/start").status_code == 403  # designers deploy, they do not start work
    for client in (anna, chefin, guest):
        client.close()


def test_phone_capture_starts_the_incident_process(desk: tuple[Api, Any]) -> None:
    app, customer = desk
    _deploy(app, "incident")
    sina, token = _login(app.base_url, "sina")
    data = {"account": customer["number"], "contact_id": str(customer["contact_id"]), "category": "Internet",
            "impact": "high", "urgency": "high", "summary": "Kein DSL-Sync", "description": "Seit 8 Uhr.",
            "csrf_token": token}
    response = sina.post("/service-desk/incidents/new", data=data)
    assert response.status_code == 422  # categories are the codes the process routes by
    category = re.search(r'data-field="category">.*?</div>', response.text, re.S)
    assert category is not None and "aus der Liste wählen" in category.group(0)
    assert app.engine.query_instances(InstanceFilter())[1] == 0

    response = sina.post("/service-desk/incidents/new", data={**data, "category": "network"})
    assert response.status_code == 303 and response.headers["location"].startswith("/instances/")
    instance_id = response.headers["location"].rsplit("/", 1)[1]
    task = wait_for(lambda: next(iter(app.engine.list_tasks(instance_id=instance_id)), None), "the work task")
    assert (task.element_id, task.candidate_groups) == ("work_2nd", ["support2"])
    with app.engine.db.read() as conn:
        row = conn.execute(sa.select(incident)).one()
    assert (row.origin, row.priority, row.category, row.contact_id, row.status, row.assigned_group) == \
        ("phone", "P1", "network", customer["contact_id"], "assigned", "support2")
    assert row.resolution_due - row.opened_at == timedelta(hours=4)  # gold, P1
    assert app.engine.get_instance(instance_id).business_key == customer["number"]
    sven, _token = _login(app.base_url, "sven")
    assert f"/tasks/{task.id}" in sven.get("/tasks").text
    assert f"/tasks/{task.id}" not in sina.get("/tasks").text  # routed away from the service desk
    for client in (sina, sven):
        client.close()


def test_phone_capture_without_the_process_deployed_says_so(desk: tuple[Api, Any]) -> None:
    app, customer = desk
    sina, token = _login(app.base_url, "sina")
    response = sina.post("/service-desk/incidents/new", data={
        "account": customer["number"], "impact": "low", "urgency": "low", "summary": "Fax", "csrf_token": token})
    assert response.status_code == 409 and "nicht bereitgestellt" in response.text and "Fax" in response.text
    with app.engine.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(incident)).scalar_one() == 0
    sina.close()


# -- in Chromium ----------------------------------------------------------------------------------------
def browser_login(page: Any, app: Api, user: str, path: str, password: str = PASSWORD) -> list[str]:
    """Log in on ``path``'s login redirect; returns the list that collects console errors from then on (the
    browser's own favicon request aside)."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"{message.text} {message.location.get('url')}")
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(app.base_url + path)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**" + path)
    return problems


def unlabelled(page: Any) -> list[str]:
    """Form fields a screen reader could not name."""
    return list(page.eval_on_selector_all(
        "input:not([type=hidden]), select, textarea",
        "els => els.filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"))


def test_start_a_process_in_the_browser_and_fill_its_form(page: Any, browser_app: Api) -> None:
    _deploy_self_service(browser_app)
    problems = browser_login(page, browser_app, "anna", "/")
    page.get_by_role("link", name="Vorgang starten").first.click()
    page.wait_for_url("**/start")
    assert not unlabelled(page)
    page.get_by_label("Geschäftsschlüssel für Tagesnotiz").fill("EMP-9")
    page.get_by_role("button", name="Tagesnotiz starten").click()
    page.wait_for_url("**/tasks/*")
    page.fill("#note", "Kundentermin vorbereitet")
    page.click("button[type=submit]")
    page.wait_for_url("**/tasks?done=*")
    [instance] = browser_app.engine.query_instances(InstanceFilter(business_key="EMP-9", state=None))[0]
    assert instance.state == "completed"
    assert browser_app.engine.get_instance(instance.id).variables["note"] == "Kundentermin vorbereitet"
    assert not problems


def test_phone_capture_in_the_browser(page: Any, browser_app: Api) -> None:
    _deploy(browser_app, "incident")
    with browser_app.engine.db.transaction() as conn:
        account_id = create_account(conn, "Browser Netz KG", sla_class="silver")
        create_contact(conn, ContactInput("Krause", "Frau", "Eva"), account_id)
    problems = browser_login(page, browser_app, "sina", "/service-desk")
    page.get_by_role("link", name="Störung aufnehmen (Telefon)").click()
    page.wait_for_url("**/service-desk/incidents/new")
    page.get_by_label("Kunde (Kundennummer)").fill(str(account_id))
    page.get_by_label("Kunde (Kundennummer)").dispatch_event("change")
    page.wait_for_selector("#contact_id option:has-text('Krause')", state="attached")
    assert not unlabelled(page)
    page.get_by_role("button", name="Störung erfassen").click()
    assert page.locator("[data-field=summary] .field-error").is_visible()  # validation inline first
    assert problems == [f"Failed to load resource: the server responded with a status of 422 (Unprocessable "
                        f"Entity) {browser_app.base_url}/service-desk/incidents/new"]  # the refused form's status
    problems.clear()
    page.get_by_label("Anrufer").select_option(label="Eva Krause")
    page.get_by_label("Kategorie").select_option("billing")
    page.get_by_label("Auswirkung").select_option("medium")
    page.get_by_label("Dringlichkeit").select_option("low")
    page.get_by_label("Kurzbeschreibung").fill("Rechnung doppelt")
    page.get_by_role("button", name="Störung erfassen").click()
    page.wait_for_url("**/instances/*")
    instance_id = page.url.rsplit("/", 1)[1]
    task = wait_for(lambda: next(iter(browser_app.engine.list_tasks(instance_id=instance_id)), None), "work task")
    assert (task.element_id, task.candidate_groups) == ("work_1st", ["servicedesk"])
    page.goto(browser_app.base_url + "/tasks")
    assert page.locator(f"a[href='/tasks/{task.id}']").count() == 1
    assert not problems


@pytest.fixture
def browser_app(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("SILVERFLOW_DOCUMENTS_DIR", str(tmp_path / "documents"))
    with live_app(sqlite_url, shipped_registry) as app:
        with app.engine.db.transaction() as conn:
            for name, (roles, groups) in USERS.items():
                app.identity.add_user(conn, name, PASSWORD, roles, groups)
        yield app
