"""User-task forms from their JSON Schema: the same file renders the form and validates the data.

Submitted HTML form fields are strings; ``parse_submission`` turns them into the types the schema asks for
(numbers, booleans, arrays of objects such as quote positions) so the engine validates real values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData


@dataclass
class Field:
    name: str
    title: str
    kind: str  # text, textarea, number, integer, boolean, select, date, datetime, email, array, readonly
    required: bool = False
    options: list[Any] = field(default_factory=list)
    value: Any = None
    description: str | None = None
    items: list[Field] = field(default_factory=list)  # columns of an array of objects
    rows: list[dict[str, Any]] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None


def _kind(spec: dict[str, Any]) -> str:
    if spec.get("readOnly"):
        return "readonly"
    if "enum" in spec:
        return "select"
    kind = spec.get("type", "string")
    if kind == "string":
        fmt = spec.get("format")
        if fmt in ("date", "email"):
            return str(fmt)
        if fmt == "date-time":
            return "datetime"
        return "textarea" if spec.get("maxLength", 0) > 200 or spec.get("x-widget") == "textarea" else "text"
    if kind == "array" and spec.get("items", {}).get("type") == "object":
        return "array"
    return str(kind) if kind in ("number", "integer", "boolean") else "text"


def fields_of(schema: dict[str, Any] | None, values: dict[str, Any]) -> list[Field]:
    if not schema:
        return []
    required = set(schema.get("required", []))
    result = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = _kind(spec)
        item = Field(name, spec.get("title", name), kind, name in required, list(spec.get("enum", [])),
                     values.get(name, spec.get("default")), spec.get("description"),
                     minimum=spec.get("minimum"), maximum=spec.get("maximum"))
        if kind == "array":
            item.items = fields_of(spec["items"], {})
            item.rows = list(values.get(name) or [])
        result.append(item)
    return result


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
        return raw in ("true", "on", "1", "yes")
    if "enum" in spec and raw not in spec["enum"]:
        for option in spec["enum"]:
            if str(option) == raw:
                return option
    return raw


def parse_submission(schema: dict[str, Any] | None, form: FormData) -> dict[str, Any]:
    """Typed data from form fields; array rows come as ``name[0].column``."""
    if not schema:
        return {k: v for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}
    data: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        if spec.get("readOnly"):
            continue
        if spec.get("type") == "boolean":
            data[name] = form.get(name) in ("true", "on", "1")
            continue
        if _kind(spec) == "array":
            rows: dict[int, dict[str, Any]] = {}
            for key, raw in form.multi_items():
                if key.startswith(f"{name}[") and "]." in key and isinstance(raw, str):
                    index, column = key[len(name) + 1:].split("].", 1)
                    column_spec = spec["items"].get("properties", {}).get(column, {})
                    if index.isdigit() and raw != "":
                        rows.setdefault(int(index), {})[column] = _convert(column_spec, raw)
            data[name] = [rows[i] for i in sorted(rows) if rows[i]]
            continue
        submitted = form.get(name)
        if isinstance(submitted, str) and submitted != "":
            value = _convert(spec, submitted)
            if value is not None:
                data[name] = value
    return data
