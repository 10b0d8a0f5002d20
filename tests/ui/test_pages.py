"""The pages in a real browser: login, dashboard, inbox with claim and forms, designer deploy, instance view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import sample_process
from tests.support.live_app import Api

ROOT = Path(__file__).parents[2]
VACATION = sample_process.BPMN
FORMS = sample_process.FORMS


def _setup(app: Api) -> None:
    app.engine.deploy([("vacation-request.bpmn", VACATION)], FORMS, deployed_by="designer")
    with app.engine.db.transaction() as conn:
        app.identity.add_user(conn, "anna", "anna-password", ["clerk"], ["staff"])
        app.identity.add_user(conn, "bernd", "bernd-password", ["clerk"], ["staff"])
        app.identity.add_user(conn, "chefin", "chefin-password", ["manager", "designer"], ["management"])


def _login(page: Any, app: Api, user: str, password: str, path: str = "/") -> None:
    page.goto(app.base_url + path)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_login_dashboard_and_inbox_within_three_clicks(page: Any, app: Api) -> None:
    _setup(app)
    app.engine.start("vacation-request", business_key="EMP-1")
    page.goto(app.base_url + "/tasks")
    assert "/login" in page.url  # pages need a login
    page.fill("input[name=username]", "anna")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Benutzername oder Passwort falsch."
    page.fill("input[name=password]", "anna-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/tasks")
    page.click("a.brand")
    assert page.locator("[data-figure=group-tasks] .figure").inner_text() == "1"
    page.click("[data-figure=group-tasks]")
    page.wait_for_url("**/tasks")
    assert page.locator("table.tasks tbody tr").count() == 1
    assert "EMP-1" in page.locator("table.tasks").inner_text()


def test_claim_form_validation_and_completion(page: Any, app: Api) -> None:
    _setup(app)
    instance = app.engine.start("vacation-request", business_key="EMP-2")
    _login(page, app, "anna", "anna-password", "/tasks")
    page.click("text=Übernehmen")  # htmx swaps the row
    page.wait_for_selector("text=Freigeben")
    assert "anna" in page.locator("table.tasks tbody tr").inner_text()
    page.click("table.tasks a")
    page.fill("#days", "0")
    page.click("button[type=submit]")
    assert page.locator("[data-field=days] .field-error").is_visible()
    assert page.locator("[data-field=deputy] .field-error").inner_text()
    page.fill("#first_day", "2026-12-21")
    page.fill("#last_day", "2026-12-23")
    page.fill("#days", "3")
    page.fill("#deputy", "Frau Schmidt")
    page.click("button[type=submit]")
    page.wait_for_url("**/tasks?done=*")
    assert "Erledigt" in page.locator("[role=status]").inner_text()
    [approve] = app.engine.list_tasks(instance_id=instance.id)
    assert approve.element_id == "approve"
    assert app.engine.get_instance(instance.id).variables["days"] == 3


def test_second_clerk_gets_already_completed(browser: Any, app: Api) -> None:
    _setup(app)
    app.engine.start("vacation-request")
    [task] = app.engine.list_tasks()
    pages = []
    for user in ("anna", "bernd"):
        context = browser.new_context(locale="de-DE")
        tab = context.new_page()
        _login(tab, app, user, f"{user}-password", f"/tasks/{task.id}")
        for field, value in (("#first_day", "2026-12-21"), ("#last_day", "2026-12-22"), ("#days", "2"),
                             ("#deputy", "X")):
            tab.fill(field, value)
        pages.append((context, tab))
    pages[0][1].click("button[type=submit]")
    pages[0][1].wait_for_url("**/tasks?done=*")
    pages[1][1].click("button[type=submit]")
    assert "already completed by anna" in pages[1][1].locator("[role=alert]").inner_text()
    for context, _tab in pages:
        context.close()


def test_designer_loads_and_deploys(page: Any, app: Api) -> None:
    _setup(app)
    _login(page, app, "chefin", "chefin-password", "/designer")
    page.click("text=Bearbeiten")
    page.wait_for_selector("#canvas[data-ready=true]")
    assert page.locator(".djs-element[data-element-id=approve]").count() == 1
    page.click("#deploy")
    page.wait_for_selector("#status.ok")
    # bpmn-js writes the XML its own way, so the same model saved from the modeler is a new version
    assert "vacation-request v2" in page.locator("#status").inner_text()
    page.click("#deploy")
    page.wait_for_selector("text=vacation-request v2 (unverändert)")
    # rename the process in the modeler and deploy it as a new process
    page.evaluate("""async () => {
        const m = window.silverflowModeler;
        const { xml } = await m.saveXML();
        await m.importXML(xml.replaceAll('vacation-request', 'vacation-copy'));
    }""")
    page.click("#deploy")
    page.wait_for_selector("text=vacation-copy v1")
    assert [d.key for d in app.engine.repository.list(app.engine.db.engine.connect())] == \
        ["vacation-copy", "vacation-request"]


def test_designer_shows_problems_of_an_invalid_model(page: Any, app: Api) -> None:
    _setup(app)
    _login(page, app, "chefin", "chefin-password", "/designer/edit")
    page.wait_for_selector("#canvas[data-ready=true]")
    page.evaluate(r"""async () => {
        const m = window.silverflowModeler;
        const { xml } = await m.saveXML();
        const bad = '<bpmn:scriptTask id="bad"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>' +
                    '<bpmn:sequenceFlow id="to_bad" sourceRef="start" targetRef="bad"/>';
        await m.importXML(xml.replace(/(<bpmn:startEvent[^>]*\/>)/, '$1' + bad));
    }""")
    page.click("#deploy")
    page.wait_for_selector("#problems li")
    assert "bad" in page.locator("#problems").inner_text() and "import" in page.locator("#problems").inner_text()


def test_instance_view_highlights_the_active_task(page: Any, app: Api) -> None:
    _setup(app)
    instance = app.engine.start("vacation-request", business_key="EMP-3", user="chefin")  # need-to-know: her own
    _login(page, app, "chefin", "chefin-password", f"/instances/{instance.id}")
    page.wait_for_selector("#viewer[data-ready=true]")
    assert page.locator(".djs-element.active[data-element-id=submit]").count() == 1
    assert page.locator(".djs-element.done[data-element-id=start]").count() == 1
    assert "instance.started" in page.locator(".timeline").inner_text()


def test_english_on_request(browser: Any, app: Api) -> None:
    _setup(app)
    context = browser.new_context(locale="en-US", extra_http_headers={"Accept-Language": "en-US,en;q=0.9"})
    tab = context.new_page()
    _login(tab, app, "anna", "anna-password")
    assert "The essentials at a glance" in tab.locator("h1").inner_text()
    tab.click("a.lang:text-is(\"DE\")")
    assert "Das Wichtigste auf einen Blick" in tab.locator("h1").inner_text()
    context.close()


def test_unknown_task_is_a_page_not_a_trace(page: Any, app: Api) -> None:
    _setup(app)
    _login(page, app, "anna", "anna-password", "/tasks/does-not-exist")
    assert page.locator("h1").inner_text() == "Nicht gefunden"
    assert "does-not-exist" in page.locator("main").inner_text()


def test_customer_search_360_view_and_start_a_process(page: Any, app: Api) -> None:
    from crm.demo import load_demo_data

    _setup(app)
    with app.engine.db.transaction() as conn:
        load_demo_data(conn)
    _login(page, app, "chefin", "chefin-password", "/")
    assert page.locator("[data-figure=sla-breached] .figure").inner_text().isdigit()
    page.click("text=Kunden")
    first = page.locator("table tbody tr td a").first
    number = first.inner_text()
    page.fill("input[name=q]", number)
    page.click("text=Suchen")
    assert page.locator("table tbody tr").count() == 1
    page.click(f"text={number}")
    assert number in page.locator("h1").inner_text()
    assert page.locator("h2", has_text="Ansprechpartner").count() == 1
    page.select_option("select[name=process]", "vacation-request")
    page.click("button:text-is('Starten')")
    page.wait_for_selector("#viewer[data-ready=true]")
    assert number in page.locator("h1").inner_text()  # business key = customer number
    page.goto(app.base_url + "/products")
    assert page.locator("table tbody tr").count() >= 15
