"""Request bodies bounded before anything parses them, and JSON without NaN or Infinity.

A 300 MB start was accepted and one 100 MB start grew the database by 1.7 GB; ``NaN`` in start variables was stored
as invalid JSON and every later variable query over that row answered 500 (issue 21). Pure ASGI: the limit is
decided from ``Content-Length`` before the app runs, or while the body streams in; only JSON bodies (at most the
JSON limit) are held in memory, to be checked once before the app parses them.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem

NON_FINITE = (b"NaN", b"Infinity")


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes the limit; the middleware answers 413 instead."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def non_finite(body: bytes) -> str | None:
    """The first ``NaN``/``Infinity`` outside a string in a JSON body, else ``None`` (unparseable JSON is the
    app's to report)."""
    if not any(token in body for token in NON_FINITE):
        return None
    try:
        json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:
        return str(exc) if str(exc).endswith("is not JSON") else None
    return None


class BodyLimits:
    """413 problem+json for bodies over the limit (``json_bytes`` for JSON and page forms, ``upload_bytes`` for
    uploads: multipart and raw files); 422 for JSON with non-finite numbers."""

    def __init__(self, app: ASGIApp, json_bytes: int, upload_bytes: int) -> None:
        self.app, self.json_bytes, self.upload_bytes = app, json_bytes, upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        media = headers.get("content-type", "").lower().split(";")[0].strip()
        is_json = media == "application/json" or media.endswith("+json")
        limit = self.json_bytes if is_json or media == "application/x-www-form-urlencoded" else self.upload_bytes
        too_large = problem(413, "Too large", f"the request body is larger than {limit} bytes", "too-large",
                            [{"field": "(body)", "message": f"at most {limit} bytes"}])
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        if is_json:
            body, more = b"", True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    await too_large(scope, receive, send)
                    return
            bad = non_finite(body)
            if bad:
                await problem(422, "Invalid request", f"{bad}: numbers must be finite", "validation",
                              [{"field": "(body)", "message": bad}])(scope, receive, send)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self._streamed(scope, receive, send, limit, too_large)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int, too_large: Any) -> None:
        """Counts the body as the app reads it; past the limit the app's own answer is dropped for the 413."""
        seen, exceeded, started = 0, False, False

        async def counting() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counting, guarded)
        except BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await too_large(scope, receive, send)
