"""Letter salutations from a contact's salutation, academic title and names (mail templates, PDF letters).

German follows DIN 5008 usage ("Sehr geehrter Herr Prof. Dr. Müller"); persons without a gendered
salutation get the neutral "Guten Tag Alex Meier". English uses Mr/Ms, and a title replaces them
("Dear Dr. Müller"), as English letters do.
"""

from __future__ import annotations

from .errors import DomainError

SALUTATIONS = ("Herr", "Frau", "divers", "none")
LANGUAGES = ("de", "en")


def _join(*parts: str | None) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def letter_salutation(
    salutation: str,
    last_name: str | None,
    first_name: str | None = None,
    academic_title: str | None = None,
    language: str = "de",
) -> str:
    """The opening line of a letter, without the trailing comma."""
    if salutation not in SALUTATIONS:
        raise DomainError("salutation", f"salutation must be one of {', '.join(SALUTATIONS)}")
    if language not in LANGUAGES:
        raise DomainError("preferred_language", f"preferred_language must be one of {', '.join(LANGUAGES)}")
    if not last_name or not last_name.strip():
        return "Sehr geehrte Damen und Herren" if language == "de" else "Dear Sir or Madam"
    if language == "de":
        if salutation == "Herr":
            return _join("Sehr geehrter Herr", academic_title, last_name)
        if salutation == "Frau":
            return _join("Sehr geehrte Frau", academic_title, last_name)
        return _join("Guten Tag", academic_title, first_name, last_name)
    if salutation in ("Herr", "Frau"):
        courtesy = academic_title or ("Mr" if salutation == "Herr" else "Ms")
        return _join("Dear", courtesy, last_name)
    return _join("Dear", academic_title, first_name, last_name)
