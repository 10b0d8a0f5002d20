"""Letter salutations for mail templates and letters."""

from __future__ import annotations

import pytest

from crm.errors import DomainError
from crm.salutation import letter_salutation


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("Herr", "Müller", "Hans", "Prof. Dr."), "Sehr geehrter Herr Prof. Dr. Müller"),
        (("Herr", "Müller", "Hans", None), "Sehr geehrter Herr Müller"),
        (("Frau", "Schmidt", "Eva", None), "Sehr geehrte Frau Schmidt"),
        (("Frau", "Schmidt", "Eva", "Dr."), "Sehr geehrte Frau Dr. Schmidt"),
        (("divers", "Meier", "Alex", None), "Guten Tag Alex Meier"),
        (("none", "Meier", "Alex", None), "Guten Tag Alex Meier"),
        (("none", "Meier", None, None), "Guten Tag Meier"),
        (("none", "", None, None), "Sehr geehrte Damen und Herren"),
        (("Herr", "  Müller ", " ", "  "), "Sehr geehrter Herr Müller"),
    ],
)
def test_german(args: tuple[str, str, str | None, str | None], expected: str) -> None:
    assert letter_salutation(*args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("Herr", "Müller", "Hans", None), "Dear Mr Müller"),
        (("Frau", "Schmidt", "Eva", None), "Dear Ms Schmidt"),
        (("Herr", "Müller", "Hans", "Prof. Dr."), "Dear Prof. Dr. Müller"),
        (("divers", "Meier", "Alex", None), "Dear Alex Meier"),
        (("none", None, None, None), "Dear Sir or Madam"),
    ],
)
def test_english(args: tuple[str, str | None, str | None, str | None], expected: str) -> None:
    assert letter_salutation(*args, language="en") == expected


def test_unknown_salutation_and_language() -> None:
    with pytest.raises(DomainError, match="salutation"):
        letter_salutation("Mister", "X")
    with pytest.raises(DomainError, match="preferred_language"):
        letter_salutation("Herr", "X", language="fr")
