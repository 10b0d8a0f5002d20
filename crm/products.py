"""The product catalogue: what can be sold, at which list price and VAT rate, and what production must do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import validation as v
from .errors import DomainError
from .schema import product, product_step

KINDS = ("hardware", "setup_fee", "recurring_monthly", "recurring_yearly")
PROVISIONING_STEPS = ("domain", "ip", "hardware")
CATEGORIES = ("access", "voice", "housing", "domain", "ip", "hardware")
MAX_ID = 2**31 - 1  # what an id column holds on every database


@dataclass(frozen=True)
class ProductInput:
    code: str
    name: str
    category: str
    kind: str
    list_price: Decimal
    vat_rate: Decimal = Decimal("19.00")
    description: str | None = None
    active: bool = True
    provisioning_steps: tuple[str, ...] = field(default_factory=tuple)


def create_product(conn: Connection, data: ProductInput) -> int:
    """Add a product; the code is unique (checked here so the error names the field, not the constraint)."""
    code = v.required_text("code", data.code, 50)
    steps = sorted({v.one_of("provisioning_steps", s, PROVISIONING_STEPS) for s in data.provisioning_steps})
    values = {
        "code": code,
        "name": v.required_text("name", data.name, 200),
        "description": v.optional_text("description", data.description, 10000),
        "category": v.one_of("category", data.category, CATEGORIES),
        "kind": v.one_of("kind", data.kind, KINDS),
        "list_price": v.money("list_price", data.list_price),
        "vat_rate": v.vat_rate(data.vat_rate),
        "active": bool(data.active),
    }
    if product_id_by_code(conn, code) is not None:
        raise DomainError("code", f"a product with code {code!r} already exists")
    product_id = int(conn.execute(product.insert().values(**values).returning(product.c.id)).scalar_one())
    if steps:
        conn.execute(product_step.insert(), [{"product_id": product_id, "step": s} for s in steps])
    return product_id


def product_id_by_code(conn: Connection, code: str) -> int | None:
    found = conn.execute(sa.select(product.c.id).where(product.c.code == code)).scalar_one_or_none()
    return None if found is None else int(found)


def provisioning_steps(conn: Connection, product_ids: Iterable[int]) -> dict[int, list[str]]:
    """Steps per product (products without steps are absent), in one query."""
    ids = list(product_ids)
    result: dict[int, list[str]] = {}
    if not ids:
        return result
    rows = conn.execute(
        sa.select(product_step.c.product_id, product_step.c.step)
        .where(product_step.c.product_id.in_(ids))
        .order_by(product_step.c.product_id, product_step.c.step)
    )
    for product_id, step in rows:
        result.setdefault(int(product_id), []).append(str(step))
    return result


def set_active(conn: Connection, product_id: int, active: bool) -> None:
    """Retire a product (or bring it back) without touching documents that already reference it."""
    if conn.execute(product.update().where(product.c.id == product_id).values(active=active)).rowcount != 1:
        raise DomainError("product_id", f"product {product_id} does not exist")


_UPDATABLE = ("name", "description", "category", "kind", "list_price", "vat_rate", "active", "provisioning_steps")


def update_product(conn: Connection, product_id: int, **changes: object) -> None:
    """Change catalogue data (validated like ``create_product``); the code stays, documents refer to it."""
    if conn.execute(sa.select(product.c.id).where(product.c.id == product_id)).first() is None:
        raise DomainError("product_id", f"product {product_id} does not exist")
    for name in changes:
        if name not in _UPDATABLE:
            raise DomainError(name, f"{name} cannot be changed (allowed: {', '.join(_UPDATABLE)})")
    values: dict[str, object] = {}
    for name in ("name", "description", "category", "kind"):
        if name in changes and changes[name] is not None and not isinstance(changes[name], str):
            raise DomainError(name, f"{name} must be text, got {changes[name]!r}")
    if "name" in changes:
        values["name"] = v.required_text("name", changes["name"], 200)
    if "description" in changes:
        values["description"] = v.optional_text("description", changes["description"], 10000)
    if "category" in changes:
        values["category"] = v.one_of("category", changes["category"], CATEGORIES)
    if "kind" in changes:
        values["kind"] = v.one_of("kind", changes["kind"], KINDS)
    if "list_price" in changes:
        values["list_price"] = v.money("list_price", changes["list_price"])
    if "vat_rate" in changes:
        values["vat_rate"] = v.vat_rate(changes["vat_rate"])  # type: ignore[arg-type]
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise DomainError("active", f"active must be true or false, got {changes['active']!r}")
        values["active"] = changes["active"]
    steps: list[str] | None = None
    if "provisioning_steps" in changes:
        given = changes["provisioning_steps"]
        if isinstance(given, str) or not isinstance(given, Iterable):
            raise DomainError("provisioning_steps", "provisioning_steps must be a list of steps")
        steps = sorted({v.one_of("provisioning_steps", str(s), PROVISIONING_STEPS) for s in given})
    if values:
        conn.execute(product.update().where(product.c.id == product_id).values(**values))
    if steps is not None:
        conn.execute(product_step.delete().where(product_step.c.product_id == product_id))
        if steps:
            conn.execute(product_step.insert(), [{"product_id": product_id, "step": s} for s in steps])


def product_view(conn: Connection, product_id: int) -> dict[str, object]:
    """One product with its provisioning steps (what the catalogue list leaves out)."""
    row = conn.execute(sa.select(product).where(product.c.id == product_id)).one_or_none()
    if row is None:
        raise DomainError("product_id", f"product {product_id} does not exist")
    return {**row._mapping, "provisioning_steps": provisioning_steps(conn, [product_id]).get(product_id, [])}


def product_id_by_reference(conn: Connection, reference: str) -> int:
    """The product a caller names by its code (what people know) or, failing that, by its numeric id."""
    found = product_id_by_code(conn, reference)
    if found is None and reference.isascii() and reference.isdigit() and int(reference) <= MAX_ID:
        found = conn.execute(sa.select(product.c.id).where(product.c.id == int(reference))).scalar_one_or_none()
    if found is None:
        raise DomainError("product", f"no product has the code or id {reference!r}")
    return int(found)
