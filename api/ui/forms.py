"""User-task forms from their JSON Schema: the same file renders the form and validates the data.

Submitted HTML form fields are strings; ``parse_submission`` turns them into the types the schema asks for
(numbers, booleans, lists, arrays of objects such as quote positions, uploaded files) so the engine validates
real values. Read-only context (a quote, an incident) is laid out for people by ``Field.shown``: objects as
labelled lists, arrays of objects as tables, numbers and dates in the page's language.

Coded values get readable labels the JSON-Schema way: ``"oneOf": [{"const": "open", "title": "offen"}, ...]``
makes a select (or, on an array's ``items``, checkboxes) showing the titles, and a read-only value shows the
title of its ``const`` (``anyOf`` works there too, so a free-text code can label the values it knows).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from starlette.datastructures import FormData, UploadFile

from crm.documents import clean_file_name

TRUE_VALUES = ("true", "on", "1", "yes")
LOCALES = {"de": "de_DE", "en": "en_GB"}
MAX_DEPTH = 3  # read-only context nested deeper than this is shown as text
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
DECIMAL_TEXT = re.compile(r"^-?\d+\.\d+$")
_MISSING = object()


@dataclass
class Display:
    """A read-only value laid out for reading: ``text``, ``pairs`` (an object) or ``table`` (objects)."""

    kind: str
    text: str = ""
    translate: bool = False  # yes/no and "–" are message ids of the page's catalog
    pairs: list[tuple[str, Display]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Display]] = field(default_factory=list)


@dataclass
class Field:
    name: str
    title: str
    # text, textarea, number, integer, boolean, select, date, datetime, email, array (of objects), list (of
    # primitives, comma-separated), choices (array of enum values as checkboxes), file, group (nested object),
    # readonly
    kind: str
    required: bool = False
    options: list[Any] = field(default_factory=list)
    value: Any = None
    description: str | None = None
    items: list[Field] = field(default_factory=list)  # columns of an array of objects, members of a group
    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[Any, str] = field(default_factory=dict)  # option -> title, from ``oneOf`` consts
    minimum: float | None = None
    maximum: float | None = None
    spec: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def separator(self) -> str:
        """How a list's values are typed: decimal numbers keep the comma for themselves."""
        return "; " if self.spec.get("items", {}).get("type") == "number" else ", "

    @property
    def text(self) -> str:
        """The value as the input shows it (lists joined, date-times cut to what ``datetime-local`` takes)."""
        if self.value is None:
            return ""
        if self.kind == "list" and isinstance(self.value, list):
            return self.separator.join(str(v) for v in self.value)
        if self.kind == "datetime" and isinstance(self.value, str) and ISO_DATETIME.match(self.value):
            return self.value[:16].replace(" ", "T")
        return str(self.value)

    def label(self, option: Any) -> str:
        """An option as people read it: its ``oneOf`` title, else the value itself ("–" for the empty one)."""
        return self.labels.get(option, str(option) if option != "" else "–")

    @property
    def uploads(self) -> bool:
        """Whether the form needs ``multipart/form-data`` for a file somewhere in this field."""
        return self.kind == "file" or any(child.uploads for child in self.items)

    def shown(self, language: str = "de") -> Display:
        return display_of(self.spec, self.value, language)


def _is_file(spec: dict[str, Any]) -> bool:
    """An object carrying a base64 ``content`` is a file the browser uploads (name and type come along)."""
    properties = spec.get("properties") or {}
    return spec.get("type") == "object" and any(p.get("contentEncoding") == "base64" for p in properties.values())


def _labelled_options(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a ``oneOf`` made only of ``const`` values (each with an optional ``title``), else none."""
    one_of = spec.get("oneOf")
    if isinstance(one_of, list) and one_of and all(isinstance(o, dict) and "const" in o for o in one_of):
        return one_of
    return []


def options_of(spec: dict[str, Any]) -> list[Any]:
    """The values a select offers: the ``const``s of a labelled ``oneOf``, else the ``enum``."""
    labelled = _labelled_options(spec)
    return [o["const"] for o in labelled] if labelled else list(spec.get("enum") or [])


def _const_titles(spec: dict[str, Any]) -> dict[Any, str]:
    """Titles of the ``const`` entries of ``oneOf``/``anyOf``: how a coded value reads."""
    return {o["const"]: str(o["title"]) for key in ("oneOf", "anyOf") for o in spec.get(key) or []
            if isinstance(o, dict) and "const" in o and "title" in o and isinstance(o["const"], str | int)}


def _kind(spec: dict[str, Any]) -> str:
    if spec.get("readOnly"):
        return "readonly"
    if "enum" in spec or _labelled_options(spec):
        return "select"
    kind = spec.get("type", "string")
    if kind == "string":
        fmt = spec.get("format")
        if fmt in ("date", "email"):
            return str(fmt)
        if fmt == "date-time":
            return "datetime"
        return "textarea" if spec.get("maxLength", 0) > 200 or spec.get("x-widget") == "textarea" else "text"
    if kind == "array":
        items = spec.get("items") or {}
        if items.get("type") == "object":
            return "array"
        return "choices" if "enum" in items or _labelled_options(items) else "list"
    if kind == "object":
        return "file" if _is_file(spec) else "group"
    return str(kind) if kind in ("number", "integer", "boolean") else "text"


def fields_of(schema: dict[str, Any] | None, values: dict[str, Any],
              context: dict[str, Any] | None = None, prefix: str = "") -> list[Field]:
    """The form's fields with their values; read-only fields take theirs from ``context`` when given (a form
    shown again after a refused submission keeps showing the instance's quote, not an empty one)."""
    if not schema:
        return []
    required = set(schema.get("required", []))
    result = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = _kind(spec)
        source = context if kind == "readonly" and context is not None else values
        value = source.get(name, spec.get("default"))
        option_spec = spec if kind == "select" else spec.get("items") or {}
        item = Field(prefix + name, spec.get("title", name), kind, name in required,
                     options_of(option_spec) if kind in ("select", "choices") else [], value,
                     spec.get("description"), labels=_const_titles(option_spec), minimum=spec.get("minimum"),
                     maximum=spec.get("maximum"), spec=spec)
        if kind == "array":
            item.items = fields_of(spec["items"], {})
            item.rows = [row for row in value or [] if isinstance(row, dict)]
        elif kind == "group":
            item.items = fields_of(spec, value if isinstance(value, dict) else {}, prefix=f"{prefix}{name}.")
        result.append(item)
    return result


# -- read-only context ----------------------------------------------------------------------------------
def display_of(spec: dict[str, Any], value: Any, language: str = "de", depth: int = 0) -> Display:
    """Read-only context for people: schema titles where declared, else the keys; German numbers and dates."""
    if value is None or value == "" or value == [] or value == {}:
        return Display("text", "–", translate=True)
    if isinstance(value, bool):
        return Display("text", "ja" if value else "nein", translate=True)
    if isinstance(value, str | int) and value in (titles := _const_titles(spec)):
        return Display("text", titles[value])
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        return Display("text", str(value))
    properties = spec.get("properties") or {}
    if isinstance(value, dict):
        keys = [k for k in properties if k in value] + [k for k in value if k not in properties]
        return Display("pairs", pairs=[(properties.get(k, {}).get("title", k),
                                        display_of(properties.get(k, {}), value[k], language, depth + 1))
                                       for k in keys])
    if isinstance(value, list):
        item_spec = spec.get("items") or {}
        if all(isinstance(row, dict) for row in value):
            declared = item_spec.get("properties") or {}
            keys = [k for k in declared if any(k in row for row in value)]
            keys += [k for row in value for k in row if k not in declared]
            keys = list(dict.fromkeys(keys))
            return Display("table", columns=[declared.get(k, {}).get("title", k) for k in keys],
                           rows=[[display_of(declared.get(k, {}), row.get(k), language, depth + 1) for k in keys]
                                 for row in value])
        return Display("text", ", ".join(display_of(item_spec, v, language, depth + 1).text for v in value))
    return Display("text", _format_scalar(spec, value, language))


def _format_scalar(spec: dict[str, Any], value: Any, language: str) -> str:
    """Money (``"x-format": "money"``, optional ``x-currency``) as 1.234,50 €, decimals and dates German-style;
    integers stay ungrouped (they are mostly numbers of things: IDs, lines, days)."""
    locale = LOCALES.get(language, "de_DE")
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and DECIMAL_TEXT.match(value)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        if spec.get("x-format") == "money":
            return str(format_currency(number, spec.get("x-currency", "EUR"), locale=locale))
        if isinstance(value, int):
            return str(value)
        places = max(-int(number.as_tuple().exponent), 0) if number.is_finite() else 0
        return str(format_decimal(number, format="#,##0." + "0" * places if places else "#,##0", locale=locale))
    if isinstance(value, str) and ISO_DATE.match(value):
        try:
            return str(format_date(date.fromisoformat(value), format="medium", locale=locale))
        except ValueError:
            return value
    if isinstance(value, str) and ISO_DATETIME.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        moment = moment.astimezone() if moment.tzinfo else moment
        return str(format_datetime(moment, format="dd.MM.yyyy HH:mm" if language == "de" else "medium",
                                   locale=locale))
    return str(value)


# -- submissions ----------------------------------------------------------------------------------------
def _convert(spec: dict[str, Any], raw: str) -> Any:
    kind = spec.get("type", "string")
    if raw == "" and kind != "string":
        return None
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw.replace(",", "."))
    except ValueError:
        return raw  # the schema check reports it with the field name
    if kind == "boolean":
        return raw in TRUE_VALUES
    options = options_of(spec)
    if options and raw not in options:
        for option in options:
            if str(option) == raw:
                return option
    return raw


def _split_list(spec: dict[str, Any], raw: str) -> list[Any]:
    """A typed list from "1, 2, 3" (numbers: "1,5; 2" since the comma is their decimal sign)."""
    item_spec = spec.get("items") or {}
    separators = r"[;\n]" if item_spec.get("type") == "number" else r"[,;\n]"
    return [_convert(item_spec, part.strip()) for part in re.split(separators, raw) if part.strip()]


def _upload(spec: dict[str, Any], upload: UploadFile) -> dict[str, Any] | object:
    """An uploaded file as the schema's object: ``file_name``, ``mime_type`` and base64 ``content``."""
    content = upload.file.read()
    if not upload.filename and not content:
        return _MISSING  # no file chosen
    data: dict[str, Any] = {}
    for name, member in (spec.get("properties") or {}).items():
        if member.get("contentEncoding") == "base64":
            data[name] = base64.b64encode(content).decode("ascii")
        elif "type" in name or "mime" in name:
            data[name] = upload.content_type or "application/octet-stream"
        elif "name" in name:
            data[name] = clean_file_name(upload.filename or "") or "upload"
    return data


def _parse_value(spec: dict[str, Any], form: FormData, key: str, in_row: bool) -> Any:
    """One field's typed value, or ``_MISSING`` when nothing was entered."""
    kind = _kind(spec)
    if kind == "boolean":
        checked = form.get(key) in TRUE_VALUES
        return checked if checked or not in_row else _MISSING  # an unchecked box alone is no row
    if kind == "array":
        indices = {int(m.group(1)) for k in form if (m := re.match(re.escape(key) + r"\[(\d+)\]\.", k))}
        rows = [_parse_properties(spec["items"], form, f"{key}[{i}].", in_row=True) for i in sorted(indices)]
        return [row for row in rows if row]
    if kind == "choices":
        return [_convert(spec["items"], raw) for raw in form.getlist(key) if isinstance(raw, str) and raw]
    if kind == "list":
        submitted = form.get(key)
        return _split_list(spec, submitted) if isinstance(submitted, str) else []
    if kind == "file":
        upload = form.get(key)
        return _upload(spec, upload) if isinstance(upload, UploadFile) else _MISSING
    if kind == "group":
        members = _parse_properties(spec, form, f"{key}.", in_row)
        return members or _MISSING
    submitted = form.get(key)
    if isinstance(submitted, str) and submitted != "":
        value = _convert(spec, submitted)
        if value is not None:
            return value
    return _MISSING


def _parse_properties(schema: dict[str, Any], form: FormData, prefix: str, in_row: bool) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        if spec.get("readOnly"):
            continue
        value = _parse_value(spec, form, prefix + name, in_row)
        if value is not _MISSING:
            data[name] = value
    return data


def parse_submission(schema: dict[str, Any] | None, form: FormData) -> dict[str, Any]:
    """Typed data from form fields; array rows come as ``name[0].column``, nested objects as ``name.member``."""
    if not schema:
        return {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    return _parse_properties(schema, form, "", in_row=False)


# -- validation messages --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldError:
    """A message id of the page's catalog with its parameters; ``position`` numbers an entry of a list."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)
    position: int | None = None
    literal: bool = False  # the engine's own words: shown escaped as they are, never as a catalog message


def _message(error: jsonschema.ValidationError) -> FieldError:
    limit = error.validator_value
    match error.validator:
        case "type":
            wanted = {"integer": "Bitte eine ganze Zahl eingeben.", "number": "Bitte eine Zahl eingeben."}
            return FieldError(wanted.get(str(limit), "Ungültiger Wert."))
        case "minimum":
            return FieldError("Mindestens %(limit)s.", {"limit": limit})
        case "maximum":
            return FieldError("Höchstens %(limit)s.", {"limit": limit})
        case "exclusiveMinimum":
            return FieldError("Muss größer als %(limit)s sein.", {"limit": limit})
        case "exclusiveMaximum":
            return FieldError("Muss kleiner als %(limit)s sein.", {"limit": limit})
        case "minLength":
            return FieldError("Bitte ausfüllen." if limit == 1 else "Mindestens %(limit)s Zeichen.", {"limit": limit})
        case "maxLength":
            return FieldError("Höchstens %(limit)s Zeichen.", {"limit": limit})
        case "minItems":
            return FieldError("Mindestens ein Eintrag." if limit == 1 else "Mindestens %(limit)s Einträge.",
                              {"limit": limit})
        case "maxItems":
            return FieldError("Höchstens %(limit)s Einträge.", {"limit": limit})
        case "uniqueItems":
            return FieldError("Jeden Wert nur einmal angeben.")
        case "pattern" | "format":
            return FieldError("Das Format passt nicht.")
        case "enum":
            return FieldError("Bitte einen der angebotenen Werte wählen.")
        case "oneOf" if _labelled_options({"oneOf": limit}):
            return FieldError("Bitte einen der angebotenen Werte wählen.")
        case "const" if limit is True:
            return FieldError("Bitte bestätigen.")
    return FieldError("Ungültiger Wert.")


def field_errors(schema: dict[str, Any] | None, data: dict[str, Any],
                 engine_errors: list[dict[str, str]] | None = None) -> dict[str, FieldError]:
    """Messages for the page, keyed by the field's path ("items/0/amount") and by its top-level name, so every
    field shows its own message inline and a table or list also says that one of its entries is wrong.
    ``engine_errors`` (the engine's ``{"field", "message"}``) fill in when the schema here finds nothing."""
    found: dict[str, FieldError] = {}
    validator = jsonschema.Draft202012Validator(schema or {})
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            paths = [[*path, name] for name in error.validator_value if name not in error.instance]
            message = FieldError("Bitte ausfüllen.")
        else:
            paths, message = [path or ["(form)"]], _message(error)
        for at in paths:
            found.setdefault("/".join(at), message)
            if len(at) == 2 and at[1].isdigit():  # an entry of a list: "Eintrag 2: ..."
                found.setdefault(at[0], FieldError(message.text, message.params, int(at[1]) + 1))
            elif len(at) > 2:
                found.setdefault(at[0], FieldError("Bitte die markierten Einträge korrigieren."))
    if not found:
        for item in engine_errors or []:
            found.setdefault(item["field"].split("/")[0], FieldError(item["message"], literal=True))
    return found
