"""Task forms from their JSON Schema: every shipped form renders with labels and round-trips through the HTML to
data its schema accepts; read-only context reads like a document; errors show next to the field they name."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jsonschema
import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import FormData, Headers, UploadFile

from api.app import create_app
from api.settings import Settings
from api.ui.forms import field_errors, fields_of, options_of, parse_submission
from api.ui.rendering import TEMPLATES
from tests.support.bpmn_builder import Bpmn, properties
from tests.support.live_app import Api
from tests.ui.test_start_and_phone_capture import browser_login, unlabelled

ROOT = Path(__file__).parents[2]
FORMS = sorted((ROOT / "forms").glob("*.json"))
FIELDS = '{% from "_field.html" import field %}{% for f in fields %}{{ field(f, errors, lang) }}{% endfor %}'
QUOTE = {"quote_id": 7, "number": "A-2026-0007", "version": 1, "status": "accepted", "account_id": 12345,
         "contact_id": None, "net": "1234.50", "gross": "1469.06",
         "positions": [{"line_no": 1, "description": "SDSL 10", "quantity": "1.00", "unit_price": "1234.50",
                        "total": "1234.50"},
                       {"line_no": 2, "description": "Einrichtung", "quantity": "2.00", "unit_price": "0.00",
                        "total": "0.00"}]}


def _render(fields: list[Any], errors: dict[str, Any] | None = None, lang: str = "de") -> str:
    return TEMPLATES[lang].env.from_string(FIELDS).render(fields=fields, errors=errors or {}, lang=lang)


class _Controls(HTMLParser):
    """What a browser submits for the rendered fields, and which controls no label names."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[tuple[str, str | UploadFile]] = []
        self.labelled: set[str] = set()
        self.controls: list[dict[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "label":
            self._in_label += 1
            if "for" in a:
                self.labelled.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({**a, "wrapped": "1" if self._in_label else ""})
        if tag == "input":
            kind = a.get("type", "text")
            if kind == "checkbox":
                if "checked" in a:
                    self.submitted.append((a["name"], a.get("value", "on")))
            elif kind != "file":
                self.submitted.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1
        if tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [self._options[0][0]]
            self.submitted.append((self._select, chosen[0]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.submitted.append((self._textarea, self._text))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data


def _controls(html: str) -> _Controls:
    parser = _Controls()
    parser.feed(html)
    return parser


def _example(spec: dict[str, Any]) -> Any:
    """A plausible valid value from the schema: its default or example, else one built from its constraints."""
    if "const" in spec:
        return spec["const"]
    for candidate in [*spec.get("examples", []), spec.get("default")]:
        if candidate not in (None, "", []) and jsonschema.Draft202012Validator(spec).is_valid(candidate):
            return candidate
    if options_of(spec):
        return next(option for option in options_of(spec) if option != "")
    kind = spec.get("type", "string")
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low = spec.get("minimum", spec.get("exclusiveMinimum", 0) + 1)
        value = min(max(low, 2), spec.get("maximum", 10**6))
        return int(value) if kind == "integer" else value - 0.5  # a decimal, still within its bounds
    if kind == "array":
        first = _example(spec["items"])
        return [first + n if type(first) in (int, float) else first for n in range(max(spec.get("minItems", 2), 1))]
    if kind == "object":
        return {name: _example(member) for name, member in (spec.get("properties") or {}).items()
                if not member.get("readOnly") and "contentEncoding" not in str(member)}
    if spec.get("format") == "date":
        return "2026-05-04"
    if spec.get("format") == "date-time":
        return "2026-05-04T10:00"
    if "pattern" in spec:
        return next(c for c in ("beispiel-netz.de", "AB-1", "1") if re.search(spec["pattern"], c))
    return "Beispieltext"[:spec.get("maxLength", 100)].ljust(spec.get("minLength", 0), "x")


def _context(spec: dict[str, Any]) -> Any:
    """Read-only context as the processes set it (objects with nested rows, strings, dates)."""
    if spec.get("type") == "object":
        return QUOTE
    if spec.get("type") == "array":
        return [{"date": "2026-05-04", "hours": 7.5, "project": "Silverflow"}]
    return _example({k: v for k, v in spec.items() if k != "readOnly"})


@pytest.mark.parametrize("path", FORMS, ids=[p.stem for p in FORMS])
def test_every_shipped_form_renders_labelled_and_round_trips(path: Path) -> None:
    schema = json.loads(path.read_text())
    properties_ = schema["properties"]
    values = {name: _context(member) if member.get("readOnly") else _example(member)
              for name, member in properties_.items()}
    html = _render(fields_of(schema, values))
    controls = _controls(html)
    unnamed = [c["name"] for c in controls.controls
               if c.get("id") not in controls.labelled and not c.get("aria-label") and not c["wrapped"]]
    assert not unnamed, f"controls without a label: {unnamed}"
    for name, member in properties_.items():
        assert member.get("title", name) in html
        if name in schema.get("required", []):
            assert re.search(rf'data-field="{name}">\s*(<fieldset><legend>|<label for="{name}">)[^<]*<abbr class='
                             r'"required"', html), f"{name} is not marked required"
    data = parse_submission(schema, FormData(controls.submitted))
    editable = {name: value for name, value in values.items() if not properties_[name].get("readOnly")}
    assert data == editable
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    assert "{'" not in html and "[]" not in html  # no Python reprs of context or lists


def test_read_only_quote_reads_as_labelled_list_and_table_in_german_and_english() -> None:
    schema = {"type": "object", "properties": {"quote": {"type": "object", "readOnly": True, "title": "Angebot",
                                                         "properties": {"gross": {"title": "Brutto",
                                                                                  "x-format": "money"}}},
                                               "due": {"type": "string", "readOnly": True, "title": "Fällig"}}}
    fields = fields_of(schema, {}, {"quote": QUOTE, "due": "2026-05-04T08:30:00"})
    german = _render(fields)
    assert "<legend>Angebot</legend>" in german and "<dt>Brutto</dt><dd>1.469,06\xa0€</dd>" in german
    assert german.index("<dt>Brutto</dt>") < german.index("<dt>quote_id</dt>")  # declared members first
    assert "<dt>net</dt><dd>1.234,50</dd>" in german and "<dt>account_id</dt><dd>12345</dd>" in german
    assert "<dt>contact_id</dt><dd>–</dd>" in german
    assert re.search(r"<th scope=\"col\">line_no</th>.*<td>SDSL 10</td><td>1,00</td><td>1.234,50</td>", german, re.S)
    assert "04.05.2026 08:30" in german and 'id="due"' in german
    english = _render(fields, lang="en")
    assert "<dt>Brutto</dt><dd>€1,469.06</dd>" in english and "<dd>1,234.50</dd>" in english


def test_lists_of_values_and_choices_parse_to_typed_lists_and_show_entry_errors() -> None:
    schema = {"type": "object", "required": ["drop_lines"], "properties": {
        "drop_lines": {"type": "array", "title": "Gestrichen", "items": {"type": "integer", "minimum": 1},
                       "uniqueItems": True},
        "rates": {"type": "array", "title": "Sätze", "items": {"type": "number"}},
        "days": {"type": "array", "title": "Tage", "items": {"type": "string", "enum": ["mo", "di", "mi"]}}}}
    html = _render(fields_of(schema, {"drop_lines": [2, 3], "days": ["di"]}))
    assert 'value="2, 3"' in html and re.search(r'value="di"\s+checked', html)
    form = FormData([("drop_lines", "1, 4;5"), ("rates", "1,5; 2"), ("days", "mo"), ("days", "mi")])
    assert parse_submission(schema, form) == {"drop_lines": [1, 4, 5], "rates": [1.5, 2.0], "days": ["mo", "mi"]}
    twice = parse_submission(schema, FormData([("drop_lines", "1, 1")]))
    assert field_errors(schema, twice)["drop_lines"].text == "Jeden Wert nur einmal angeben."
    data = parse_submission(schema, FormData([("drop_lines", "1, zwei")]))
    errors = field_errors(schema, data)
    assert errors["drop_lines"].position == 2 and errors["drop_lines"].text == "Bitte eine ganze Zahl eingeben."
    page = _render(fields_of(schema, data), errors)
    assert 'value="1, zwei"' in page and "Eintrag 2: Bitte eine ganze Zahl eingeben." in page
    assert 'aria-invalid="true" aria-describedby="drop_lines-error"' in page
    assert "Entry 2: Please enter a whole number." in _render(fields_of(schema, data), errors, lang="en")


def test_one_of_consts_label_options_and_coded_read_only_values() -> None:
    labels = [{"const": "open", "title": "offen"}, {"const": "won", "title": "gewonnen"}]
    schema = {"type": "object", "required": ["answer"], "properties": {
        "answer": {"type": "string", "title": "Antwort", "oneOf": labels},
        "tags": {"type": "array", "title": "Merkmale", "items": {"oneOf": labels}},
        "size": {"type": "integer", "title": "Größe", "oneOf": [{"const": 1, "title": "klein"},
                                                               {"const": 2, "title": "groß"}]},
        "deal": {"type": "object", "readOnly": True, "title": "Geschäft", "properties": {
            "stage": {"title": "Phase", "oneOf": labels},
            "kind": {"title": "Art", "anyOf": [{"const": "new", "title": "Neukunde"}, {"type": "string"}]}}}}}
    page = _render(fields_of(schema, {"answer": "won", "tags": ["open"]}, {"deal": {"stage": "won", "kind": "x"}}))
    assert re.search(r'<option value="won" selected>gewonnen</option>', page)
    assert '<option value="open" >offen</option>' in page and '<option value="2" >groß</option>' in page
    assert re.search(r'value="open"\s+checked> offen</label>', page) and "> gewonnen</label>" in page
    assert "<dt>Phase</dt><dd>gewonnen</dd>" in page and "<dt>Art</dt><dd>x</dd>" in page  # unknown code as is
    data = parse_submission(schema, FormData([("answer", "open"), ("tags", "won"), ("size", "2")]))
    assert data == {"answer": "open", "tags": ["won"], "size": 2}
    jsonschema.validate(data, schema, cls=jsonschema.Draft202012Validator)
    errors = field_errors(schema, {"answer": "lost", "size": 3})
    assert errors["answer"].text == errors["size"].text == "Bitte einen der angebotenen Werte wählen."


def test_rows_errors_sit_in_their_cell_and_if_then_requirements_name_the_field() -> None:
    claim = json.loads((ROOT / "forms" / "travel-expenses-claim.json").read_text())
    form = FormData([("purpose", "Messe"), ("trip_start", "2026-05-04"), ("trip_end", "2026-05-05"),
                     ("items[0].date", "2026-05-04"), ("items[0].category", "hotel"), ("items[0].description", "Hotel"),
                     ("items[0].amount", "-3"), ("items[1].date", ""), ("items[1].category", "")])
    data = parse_submission(claim, form)
    assert data["items"] == [{"date": "2026-05-04", "category": "hotel", "description": "Hotel", "amount": -3.0}]
    errors = field_errors(claim, data)
    page = _render(fields_of(claim, data), errors)
    assert re.search(r'<td class="invalid">.*?aria-label="Ausgaben 1: Betrag \(EUR\)".*?aria-invalid="true".*?'
                     r'<span class="field-error" id="items\[0\].amount-error">Muss größer als 0 sein.</span>', page,
                     re.S)
    assert "Bitte die markierten Einträge korrigieren." in page
    duplicate = json.loads((ROOT / "forms" / "acquisition-duplicate.json").read_text())
    data = parse_submission(duplicate, FormData([("use_existing", "true"), ("account_id", "")]))
    assert data == {"use_existing": True}
    assert field_errors(duplicate, data)["account_id"].text == "Bitte ausfüllen."
    assert parse_submission(duplicate, FormData([("account_id", "5")])) == {"use_existing": False, "account_id": 5}
    assert field_errors(duplicate, {"use_existing": False}) == {}


def test_the_engines_own_message_fills_in_escaped_when_the_schema_here_finds_nothing() -> None:
    errors = field_errors({}, {}, [{"field": "note/0", "message": "'<b>%' is not allowed"}])
    assert errors["note"].literal
    page = _render(fields_of({"properties": {"note": {"type": "string", "title": "Notiz"}}}, {}), errors)
    assert "&#39;&lt;b&gt;%&#39; is not allowed" in page


def test_an_uploaded_receipt_becomes_the_file_object_the_schema_asks_for() -> None:
    claim = json.loads((ROOT / "forms" / "travel-expenses-claim.json").read_text())
    fields = fields_of(claim, {})
    assert any(f.uploads for f in fields)
    assert 'type="file" name="items[0].receipt"' in _render(fields)
    upload = UploadFile(io.BytesIO(b"%PDF-1.4 Beleg"), filename="hotel.pdf",
                        headers=Headers({"content-type": "application/pdf"}))
    empty = UploadFile(io.BytesIO(b""), filename="")
    data = parse_submission(claim, FormData([("items[0].date", "2026-05-04"), ("items[0].category", "hotel"),
                                             ("items[0].description", "Hotel"), ("items[0].amount", "89,90"),
                                             ("items[0].receipt", upload), ("items[1].receipt", empty)]))
    assert data["items"] == [{"date": "2026-05-04", "category": "hotel", "description": "Hotel", "amount": 89.9,
                              "receipt": {"file_name": "hotel.pdf", "mime_type": "application/pdf",
                                          "content": "JVBERi0xLjQgQmVsZWc="}}]


# -- the task page over HTTP ------------------------------------------------------------------------------
@dataclass
class Desk:
    client: TestClient
    engine: Any
    csrf: str


def _review_only(engine: Any, identity: Any) -> None:
    """The shipped order-review form on a one-task process, and a back-office clerk to work on it."""
    process = Bpmn("review-only")
    process.node("start", "startEvent") \
        .node("review", "userTask", "Positionen prüfen", properties(formKey="order-review",
                                                                    candidateGroups="backoffice")) \
        .node("end", "endEvent").chain("start", "review", "end")
    engine.deploy([("review-only.bpmn", process.xml())],
                  [("order-review.json", (ROOT / "forms" / "order-review.json").read_bytes())])
    with engine.db.transaction() as conn:
        identity.add_user(conn, "bea", "bea-password", ["clerk"], ["backoffice"])


@pytest.fixture
def desk(db_url: str) -> Iterator[Desk]:
    app = create_app(Settings(database_url=db_url), run_worker=False)
    engine = app.state.engine
    _review_only(engine, app.state.identity)
    with TestClient(app) as client:
        response = client.post("/login", data={"username": "bea", "password": "bea-password", "next": "/tasks"})
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]
        yield Desk(client, engine, csrf)
    engine.db.dispose()


# what the order process's pre-script offers from the account (this one-task process has no load step)
OFFERED = {"name": "Muster GmbH", "street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin",
           "country": "DE"}
ADDRESS_FIELDS = [(f"delivery_address.{key}", value) for key, value in OFFERED.items()]


def test_order_review_page_shows_the_quote_refuses_bad_lines_inline_and_completes(desk: Desk) -> None:
    instance = desk.engine.start("review-only", {"quote": QUOTE, "delivery_address": OFFERED})
    [task] = desk.engine.list_tasks(instance_id=instance.id)
    page = desk.client.get(f"/tasks/{task.id}").text
    assert "<legend>Angebot</legend>" in page and "<dt>Summe brutto</dt><dd>1.469,06\xa0€</dd>" in page
    assert "<dt>Status</dt><dd>Angenommen</dd>" in page and '<th scope="col">Einzelpreis</th>' in page
    assert "<td>Einrichtung</td>" in page and "{&#39;" not in page
    assert 'name="delivery_address.street"' in page and 'value="Hauptstraße 1"' in page  # offered, editable

    def post(fields: list[tuple[str, str]]) -> Any:
        return desk.client.post(f"/tasks/{task.id}", content=urlencode([("csrf_token", desk.csrf), *fields]),
                                headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)

    refused = post([("drop_lines", "2, x"), ("adjustments[0].line_no", "1"), ("adjustments[0].quantity", "0")])
    assert refused.status_code == 422 and '<p class="error" role="alert">Bitte die markierten Felder' in refused.text
    assert "Eintrag 2: Bitte eine ganze Zahl eingeben." in refused.text and 'value="2, x"' in refused.text
    assert 'id="adjustments[0].quantity-error">Muss größer als 0 sein.' in refused.text
    assert "<dt>Angebotsnummer</dt><dd>A-2026-0007</dd>" in refused.text  # the context stays after a refusal
    no_street = post([("drop_lines", "2"), *[f for f in ADDRESS_FIELDS if f[0] != "delivery_address.street"]])
    assert no_street.status_code == 422 and 'id="delivery_address.street-error"' in no_street.text
    done = post([("drop_lines", "2"), ("adjustments[0].line_no", "1"), ("adjustments[0].quantity", "3"),
                 ("note", "Einrichtung entfällt"), *ADDRESS_FIELDS[:-1], ("delivery_address.country", "AT")])
    assert done.status_code == 303
    variables = desk.engine.get_instance(instance.id).variables
    assert (variables["drop_lines"], variables["adjustments"]) == ([2], [{"line_no": 1, "quantity": 3.0}])
    assert variables["delivery_address"] == {**OFFERED, "country": "AT"}


def test_order_review_in_chromium(page: Any, app: Api) -> None:
    _review_only(app.engine, app.identity)
    instance = app.engine.start("review-only", {"quote": QUOTE, "delivery_address": OFFERED})
    [task] = app.engine.list_tasks(instance_id=instance.id)
    problems = browser_login(page, app, "bea", f"/tasks/{task.id}", password="bea-password")
    quote = page.locator("[data-field=quote]")
    assert "A-2026-0007" in quote.locator("dl").inner_text() and quote.locator("table tbody tr").count() == 2
    assert not unlabelled(page)
    page.get_by_label("Gestrichene Positionen (Zeilennummern)").fill("zwei")
    page.get_by_label("Anpassungen 1: Position").fill("1")
    page.get_by_label("Anpassungen 1: Menge").fill("2.5")
    page.click("button[type=submit]")
    error = page.locator("[data-field=drop_lines] .field-error")
    assert error.inner_text() == "Eintrag 1: Bitte eine ganze Zahl eingeben."
    page.get_by_label("Gestrichene Positionen (Zeilennummern)").fill("2")
    page.click("button[type=submit]")
    page.wait_for_url("**/tasks?done=*")
    variables = app.engine.get_instance(instance.id).variables
    assert (variables["drop_lines"], variables["adjustments"]) == ([2], [{"line_no": 1, "quantity": 2.5}])
    assert problems == [f"Failed to load resource: the server responded with a status of 422 (Unprocessable Entity) "
                        f"{app.base_url}/tasks/{task.id}"]  # the refused form's status, nothing else
