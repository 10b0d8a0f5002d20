"""The one CSV writer neutralises cells a spreadsheet would run as formulas (issue 21) and keeps numbers numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from crm.csv_text import neutralise, restore, to_csv


def _cells(text: str) -> list[str]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))[1]


@pytest.mark.parametrize("hostile", ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3",
                                     "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "=1;2"])
def test_formula_cells_get_a_leading_quote(hostile: str) -> None:
    [cell] = _cells(to_csv([{"name": hostile}]))
    assert cell == "'" + hostile
    assert restore(cell) == hostile


def test_numbers_and_plain_text_stay_as_they_are() -> None:
    row = {"int": -5, "float": -1.5, "decimal": Decimal("-12.50"), "text_number": "-12.50", "plain": "Müller",
           "list": ["=a", "b"], "bool": True, "none": None, "inner": "a=b"}
    assert _cells(to_csv([row])) == ["-5", "-1.5", "-12.50", "-12.50", "Müller", "'=a,b", "true", "", "a=b"]
    assert _cells(to_csv([row], decimal_comma=True))[:4] == ["-5", "-1,5", "-12,50", "-12,50"]


def test_restore_leaves_other_quotes_alone() -> None:
    assert restore("'quoted'") == "'quoted'"
    assert restore("'") == "'"
    assert neutralise("'=x") == "'=x"  # already neutral: no second quote
