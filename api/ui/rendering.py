"""What every page module shares: the Jinja2 environments per language, login and role checks, CSRF."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from babel.numbers import format_currency
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.datastructures import FormData

from crm.accounts import display_name
from engine.database import utcnow

from ..identity import Principal
from ..security import SESSION_COOKIE
from .forms import LOCALES
from .i18n import LANGUAGES, language_of, translations

ROOT = Path(__file__).resolve().parent.parent


def _templates(language: str) -> Jinja2Templates:
    """One environment per language: translations are installed once, never swapped under a request."""
    env = Environment(loader=FileSystemLoader(str(ROOT / "templates")), extensions=["jinja2.ext.i18n"],
                      autoescape=True)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["dt"] = _format_datetime
    env.filters["money"] = lambda value: _format_money(value, language)
    env.filters["display_name"] = display_name  # name with the legal form once (crm.accounts' one rule)
    return Jinja2Templates(env=env)


def _format_money(value: Decimal | float | str | None, language: str) -> str:
    """Euro amounts as the page's language writes them (1.234,50 € in German)."""
    if value is None:
        return "–"
    return str(format_currency(Decimal(str(value)), "EUR", locale=LOCALES.get(language, "de_DE")))


def _format_datetime(value: datetime | None) -> str:
    return value.astimezone().strftime("%d.%m.%Y %H:%M") if value else "–"


TEMPLATES = {language: _templates(language) for language in LANGUAGES}


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageForbidden(Exception):
    pass


def current_user(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with request.app.state.engine.db.read() as conn:
            principal = request.app.state.identity.session_principal(conn, token)
        if principal is not None:
            return principal
    raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))


def require_user(request: Request, *roles: str) -> Principal:
    principal = current_user(request)
    if roles and not principal.has(*roles):
        raise PageForbidden()
    return principal


async def submitted_form(request: Request) -> FormData:
    """Read a posted form on the event loop, so that the page handler can be a plain ``def``: FastAPI runs
    those in its threadpool, and their engine and database work never stalls other requests."""
    return await request.form()


#: A page handler's parameter for its posted form (read before the handler runs).
PageForm = Annotated[FormData, Depends(submitted_form)]


def checked_form(request: Request, principal: Principal, form: FormData) -> FormData:
    """The form, if it carries the session's CSRF token (field or header); else the page is forbidden."""
    if form.get("csrf_token") != principal.csrf_token and request.headers.get("X-CSRF-Token") != principal.csrf_token:
        raise PageForbidden()
    return form


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    language = language_of(request)
    context.setdefault("user", None)
    values = {"lang": language, "languages": LANGUAGES, "now": utcnow(), **context}
    return TEMPLATES[language].TemplateResponse(request, name, values, status_code=status_code)
