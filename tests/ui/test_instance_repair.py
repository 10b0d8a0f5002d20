"""Instance repair and migration in the browser: a manager opens a stuck instance, clicks the element in the
diagram, moves the token with a reason, and the task appears in the other group's inbox; a manager migrates the
running instances of a process to its new version on the migration page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors import default_registry
from connectors.registry import ConnectorContext, Registry
from engine.database import Database
from tests.engine.test_migration import V1, V2
from tests.support.live_app import Api, live_app


def _registry(_database: Database) -> Registry:
    registry = default_registry()

    def lookup(params: dict[str, Any], context: ConnectorContext) -> dict[str, Any]:
        return {"found": True}

    registry.register("flaky", lookup)
    return registry


@pytest.fixture
def app(sqlite_url: str) -> Iterator[Api]:
    with live_app(sqlite_url, registry=_registry) as running:
        running.engine.deploy([("modify_flow.bpmn", V1.encode())], deployed_by="designer")
        with running.engine.db.transaction() as conn:
            running.identity.add_user(conn, "chefin", "chefin-password", ["manager"], ["management", "sales"])
            running.identity.add_user(conn, "bea", "bea-password", ["clerk"], ["backoffice"])
            running.identity.add_user(conn, "sam", "sam-password", ["clerk"], ["sales"])
        yield running


def _login(page: Any, app: Api, user: str, password: str, path: str) -> None:
    page.goto(app.base_url + path)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_a_manager_moves_the_token_of_a_stuck_instance_and_backoffice_gets_the_task(browser: Any, app: Api) -> None:
    stuck = app.engine.start("modify-flow", {"failures": 0, "frist": "P5D"}, business_key="LEAD-7")
    clerk = browser.new_context(locale="de-DE").new_page()
    _login(clerk, app, "sam", "sam-password", f"/instances/{stuck.id}")
    clerk.wait_for_url(f"**/instances/{stuck.id}")
    assert clerk.locator("#modify").count() == 0  # a clerk is offered no repair

    page = browser.new_context(locale="de-DE").new_page()
    page.set_default_timeout(15_000)
    _login(page, app, "chefin", "chefin-password", f"/instances/{stuck.id}")
    page.wait_for_url(f"**/instances/{stuck.id}")
    page.wait_for_selector("#viewer[data-ready=true]")
    page.wait_for_selector("#modify[data-ready=true]")
    page.locator('#viewer [data-element-id="capture"]').first.click()
    assert page.locator("select[name=element]").input_value() == "capture"
    assert page.locator("[data-role=tokens]").inner_text() == "1 aktive(r) Token"
    assert page.locator("select[name=action] option[value=skipTask]").is_disabled()
    page.select_option("select[name=action]", "moveToken")
    page.select_option("select[name=target]", "review")
    page.fill("textarea[name=reason]", "Daten liegen vor, Erfassung entfällt")
    page.click("#modify button[type=submit]")
    assert "/modify" not in page.url  # the confirmation is required: the browser refused to send
    page.check("input[name=confirm]")
    page.click("#modify button[type=submit]")
    page.wait_for_url(f"**/instances/{stuck.id}?modified=1")
    assert "instance.modified" in page.locator(".timeline").inner_text()
    assert "chefin" in page.locator(".timeline li[data-type='instance.modified']").inner_text()

    inbox = browser.new_context(locale="de-DE").new_page()
    _login(inbox, app, "bea", "bea-password", "/tasks")
    inbox.wait_for_url("**/tasks")
    assert "Prüfen" in inbox.locator("table.tasks").inner_text()
    assert "LEAD-7" in inbox.locator("table.tasks").inner_text()
    clerk.goto(app.base_url + "/tasks")
    assert "Prüfen" not in clerk.locator("main").inner_text()


def test_an_invalid_page_modification_is_explained(page: Any, app: Api) -> None:
    inst = app.engine.start("modify-flow", {"failures": 0})
    _login(page, app, "chefin", "chefin-password", f"/instances/{inst.id}")
    page.wait_for_selector("#modify[data-ready=true]")
    page.select_option("select[name=element]", "review")
    assert page.locator("select[name=action]").input_value() == "startBeforeActivity"
    assert page.locator("select[name=action] option[value=moveToken]").is_disabled()  # no token at review
    page.fill("textarea[name=reason]", "   ")  # the browser takes blanks as filled in; the engine does not
    page.check("input[name=confirm]")
    page.click("#modify button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "a reason is required"
    page.click("text=zurück zur Instanz")
    page.wait_for_url(f"**/instances/{inst.id}")
    [task] = app.engine.list_tasks(instance_id=inst.id)
    assert task.element_id == "capture"


def test_a_manager_migrates_running_instances_on_the_migration_page(page: Any, app: Api) -> None:
    ok = app.engine.start("modify-flow", {"failures": 0, "frist": "P5D"}, business_key="OK-1")
    missing = app.engine.start("modify-flow", {"failures": 0}, business_key="NO-2")
    app.engine.deploy([("modify_flow.bpmn", V2.encode())], deployed_by="designer")
    _login(page, app, "chefin", "chefin-password", "/instances")
    page.wait_for_url("**/instances")
    page.click("text=Instanzen auf eine neue Version migrieren")
    page.select_option("select[name=key]", "modify-flow")
    page.click("form.filters button[type=submit]")
    page.select_option("select[name=source]", "1")
    page.select_option("select[name=target]", "2")
    page.click("form.filters button[type=submit]")
    assert "does not exist in the target" in page.locator("tr.unmapped[data-element=review]").inner_text()
    page.select_option("select[name='map:review']", "check")
    page.click("#plan button[type=submit]")
    assert page.locator(f"tr[data-instance='{ok.id}']").get_attribute("class") == "ok"
    refused = page.locator(f"tr[data-instance='{missing.id}']")
    assert refused.get_attribute("class") == "refused" and "frist" in refused.inner_text()
    page.fill("form.migrate input[name=reason]", "Frist aus den Daten")
    page.check("form.migrate input[name=confirm]")
    page.click("form.migrate button[type=submit]")
    assert "1 von 1 migriert" in page.locator("main").inner_text()
    assert app.engine.get_instance(ok.id).process_version == 2
    assert app.engine.get_instance(missing.id).process_version == 1
