"""Headers that keep stored content passive (issue 21): downloads of BPMN XML, documents and PDFs are attachments
with ``nosniff`` and a sandboxing CSP; every response carries nosniff, frame and referrer headers; pages the strict
CSP; ``/api/docs`` names only our own files."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from api.headers import PAGE_CSP, SANDBOX_CSP, content_disposition
from crm import documents as crm_documents
from tests.api.conftest import Api
from tests.support import sample_process

TEMPLATES = Path(__file__).parents[2] / "api" / "templates"
SCRIPTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://x">
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:extensionElements><script xmlns="http://www.w3.org/1999/xhtml">fetch("/api/v1/auth/me")</script>
    </bpmn:extensionElements>
    <bpmn:startEvent id="start"/>
  </bpmn:process>
</bpmn:definitions>"""


def _assert_download(response: httpx.Response, file_name: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{file_name}"')
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == SANDBOX_CSP


def test_bpmn_xml_is_a_sandboxed_download(api: Api) -> None:
    api.engine.deploy([("scripted.bpmn", SCRIPTED)], [], deployed_by="designer")
    client = api.client("manager")
    latest = client.get("/process-definitions/scripted/xml")
    _assert_download(latest, "scripted.bpmn")
    assert latest.headers["content-type"].startswith("application/xml") and b"<script" in latest.content
    _assert_download(client.get("/process-definitions/scripted/xml", params={"version": 1}), "scripted-v1.bpmn")


def test_documents_are_sandboxed_downloads(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crm_documents.ENV_DIR, str(tmp_path))
    sales = api.client("sales")
    account_id = sales.post("/accounts", json={"name": "Schmidt KG"}).json()["id"]
    uploaded = sales.post(f"/accounts/{account_id}/documents", files={"file": ("x.txt", b"hello <b>x</b>",
                                                                               "text/plain")})
    assert uploaded.status_code == 201, uploaded.text
    _assert_download(sales.get(f"/documents/{uploaded.json()['id']}/content"), "x.txt")


def test_every_response_carries_the_common_headers(api: Api) -> None:
    api.engine.deploy([("vacation-request.bpmn", sample_process.BPMN)], sample_process.FORMS, deployed_by="t")
    client = api.client("manager")
    for response in (client.get("/process-definitions"), client.get("/health"), client.get("/nope"),
                     client.post("/process-definitions/vacation-request/instances", json={"variables": 1}),
                     httpx.get(api.base_url + "/static/app.css")):
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["content-security-policy"] == SANDBOX_CSP
    login_page = httpx.get(api.base_url + "/login")
    assert login_page.headers["content-security-policy"] == PAGE_CSP
    assert "script-src 'self';" in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP


def test_api_docs_use_only_vendored_files(api: Api) -> None:
    docs = httpx.get(api.base_url + "/api/docs")
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == PAGE_CSP
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/static/") or s == "data:," for s in sources), sources
    for source in sources[1:]:
        assert httpx.get(api.base_url + source).status_code == 200, source
    assert "<script>" not in docs.text and "cdn" not in docs.text
    assert httpx.get(api.base_url + "/redoc").status_code == 404  # FastAPI's CDN page is gone too


def test_templates_have_no_inline_script_or_handlers() -> None:
    """The page CSP refuses inline script; a template that needs one must use a file under api/static."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "javascript:" not in text and "hx-on" not in text, template.name


def test_content_disposition_keeps_quotes_and_controls_out_of_the_header() -> None:
    header = content_disposition('a"b\r\nSet-Cookie: x.pdf')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="a_b__Set-Cookie: x.pdf"')
