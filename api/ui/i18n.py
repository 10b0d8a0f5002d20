"""German-first pages with English available, through Jinja2's i18n extension and Babel catalogs.

The message ids are the German texts; ``api/locale/<lang>/LC_MESSAGES/messages.po`` translates them. The
language comes from the ``lang`` cookie (a user setting) or the browser's Accept-Language.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi import Request

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGES = ("de", "en")


@cache
def translations(language: str) -> NullTranslations:
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "de" or not po_file.exists():
        return NullTranslations()
    with po_file.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    result = Translations()
    result._catalog = {str(message.id): str(message.string) for message in catalog
                       if isinstance(message.id, str) and message.id and isinstance(message.string, str)}
    return result


def language_of(request: Request) -> str:
    chosen = request.cookies.get("lang")
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "de"
