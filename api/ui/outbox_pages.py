"""The outbox of the local SMTP sink: what customers would have received while Silverflow runs on a laptop."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from connectors.smtp_sink import outbox_dir, read_mail, read_outbox
from engine.errors import NotFound

from .rendering import render, require_user

router = APIRouter(include_in_schema=False)
LIMIT = 200


def _folder(request: Request) -> Path:
    """``app.state.outbox_dir`` when the app sets one (tests), else the sink's ``SILVERFLOW_OUTBOX_DIR``."""
    configured = getattr(request.app.state, "outbox_dir", None)
    return Path(configured) if configured else outbox_dir()


@router.get("/outbox", response_class=HTMLResponse)
def outbox(request: Request) -> HTMLResponse:
    user = require_user(request, "manager", "designer")
    return render(request, "outbox.html", user=user, mails=read_outbox(_folder(request), LIMIT), mail=None,
                  limit=LIMIT)


@router.get("/outbox/{name}", response_class=HTMLResponse)
def outbox_mail(request: Request, name: str) -> HTMLResponse:
    user = require_user(request, "manager", "designer")
    mail = read_mail(_folder(request), name)
    if mail is None:
        raise NotFound(f"Keine Mail '{name}' im Postausgang.")
    return render(request, "outbox.html", user=user, mails=[], mail=mail, limit=LIMIT)
