"""The catalogue as callers name it: a product by its code or id, and one product with its provisioning steps."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.engine import Connection

from crm.errors import DomainError
from crm.products import product_id_by_reference, product_view, update_product


def test_product_by_code_or_id(conn: Connection, catalogue: dict[str, int]) -> None:
    assert product_id_by_reference(conn, "SETUP") == catalogue["SETUP"]
    assert product_id_by_reference(conn, str(catalogue["MODEM"])) == catalogue["MODEM"]
    for unknown in ("NOPE", "99999999999999", "\u00b2"):
        with pytest.raises(DomainError) as err:
            product_id_by_reference(conn, unknown)
        assert err.value.field == "product"


def test_product_view_follows_updates(conn: Connection, catalogue: dict[str, int]) -> None:
    modem = catalogue["MODEM"]
    update_product(conn, modem, list_price=Decimal("79.00"), provisioning_steps=["hardware", "ip"])
    view = product_view(conn, modem)
    assert (view["code"], view["list_price"], view["provisioning_steps"]) == ("MODEM", Decimal("79.00"),
                                                                            ["hardware", "ip"])
    with pytest.raises(DomainError) as err:
        product_view(conn, 424242)
    assert err.value.field == "product_id"
