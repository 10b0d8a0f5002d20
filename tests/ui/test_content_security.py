"""The page CSP in a real Chromium: every main page, the designer, the instance viewer and /api/docs run with
``script-src 'self'`` and no policy violation; a designer's BPMN with an XHTML ``<script>`` opened from a link is a
download, never a page (issue 21)."""

from __future__ import annotations

from typing import Any

from api.headers import PAGE_CSP
from tests.support import sample_process
from tests.support.live_app import Api

# every violation the page reports, before any of its own scripts run
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""
SCRIPTED_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://x">
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:extensionElements><script xmlns="http://www.w3.org/1999/xhtml">document.title = "owned";</script>
    </bpmn:extensionElements>
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>"""


def _watch(page: Any) -> list[str]:
    """Console messages about the CSP and uncaught errors, collected while the test browses."""
    problems: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems


def _visit(page: Any, url: str, problems: list[str], ready: str | None = None) -> None:
    response = page.goto(url)
    assert response.status == 200, url
    assert response.headers["content-security-policy"] == PAGE_CSP, url
    assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"
    if ready:
        page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    violations = page.evaluate("window.__cspViolations")
    assert not violations and not problems, (url, violations, problems)


def test_main_pages_run_under_the_strict_csp(page: Any, app: Api) -> None:
    app.engine.deploy([("vacation-request.bpmn", sample_process.BPMN)], sample_process.FORMS, deployed_by="t")
    with app.engine.db.transaction() as conn:
        app.identity.add_user(conn, "chefin", "chefin-password", ["clerk", "manager", "designer", "admin"],
                              ["staff", "management", "sales", "servicedesk"])
    account = app.client("sales").post("/accounts", json={"name": "Firma <script>alert(1)</script>"}).json()
    instance = app.engine.start("vacation-request", business_key="EMP-1", user="chefin")
    [task] = app.engine.list_tasks(instance_id=instance.id)
    problems = _watch(page)
    page.goto(app.base_url + "/login")
    page.fill("input[name=username]", "chefin")
    page.fill("input[name=password]", "chefin-password")
    page.click("button[type=submit]")
    page.wait_for_url(app.base_url + "/")
    for path in ("/", "/tasks", f"/tasks/{task.id}", "/start", "/appointments", "/customers",
                 f"/customers/{account['id']}", f"/customers/{account['id']}/quotes/new", "/products", "/opportunities",
                 "/service-desk", "/instances", "/incidents", "/outbox", "/designer"):
        _visit(page, app.base_url + path, problems)
    _visit(page, f"{app.base_url}/instances/{instance.id}", problems, "#viewer[data-ready=true]")
    _visit(page, f"{app.base_url}/designer/edit?key=vacation-request", problems, "#canvas[data-ready=true]")
    _visit(page, app.base_url + "/tasks", problems)
    page.click("text=Übernehmen")  # htmx swaps the row under the CSP too
    page.wait_for_selector("text=Freigeben")
    assert not page.evaluate("window.__cspViolations") and not problems, problems


def test_api_docs_work_offline_under_the_csp(page: Any, app: Api) -> None:
    problems = _watch(page)
    outside: list[str] = []

    def offline(route: Any) -> None:
        """No network but the app: a CDN request fails and is recorded."""
        if route.request.url.startswith(app.base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    _visit(page, app.base_url + "/api/docs", problems, ".opblock-tag")
    # the vendored bundle fetched the whole document (it renders the operations lazily, as they scroll into view)
    assert page.evaluate("() => Object.keys(window.ui.specSelectors.specJson().toJS().paths).length") > 100
    page.click(".opblock-summary-path:has-text('/process-definitions/{key}/xml')")
    page.wait_for_selector("text=The deployed file as a download")
    assert not page.evaluate("window.__cspViolations") and not problems, problems
    assert outside == []


def test_bpmn_with_a_script_opened_from_a_link_is_a_download(page: Any, app: Api) -> None:
    app.engine.deploy([("scripted.bpmn", SCRIPTED_XML)], [], deployed_by="designer")
    with app.engine.db.transaction() as conn:
        app.identity.add_user(conn, "chefin", "chefin-password", ["manager"], ["management"])
    page.goto(app.base_url + "/login")
    page.fill("input[name=username]", "chefin")
    page.fill("input[name=password]", "chefin-password")
    page.click("button[type=submit]")
    page.wait_for_url(app.base_url + "/")
    page.set_content(f'<a id="xml" href="{app.base_url}/api/v1/process-definitions/scripted/xml">XML</a>')
    with page.expect_download() as download:
        page.click("#xml")
    assert download.value.suggested_filename == "scripted.bpmn"
    assert "owned" not in page.title()
