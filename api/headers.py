"""Security headers on every response, and the headers of a download of stored content.

Nothing a designer, a form or a customer sends becomes active content: pages get a strict CSP (scripts only from
our own files, so an injected ``<script>`` or ``onclick=`` does not run), every other response a sandboxing CSP
(a BPMN file with an XHTML ``<script>`` opened in the browser runs nothing), and nothing is sniffed or framed.
Pure ASGI rather than ``BaseHTTPMiddleware``: it only touches the response start and never buffers a body.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# style-src needs 'unsafe-inline': bpmn-js and htmx set style attributes and inject a <style> of their own
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
SANDBOX_CSP = "sandbox; default-src 'none'"
COMMON = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"))


def content_disposition(file_name: str) -> str:
    """``attachment`` with the name as typed (RFC 6266 ``filename*``) and a plain ASCII fallback for old clients."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def download_headers(file_name: str) -> dict[str, str]:
    """Headers for stored content (BPMN XML, uploaded documents, PDFs): saved, never shown as a page."""
    return {"Content-Disposition": content_disposition(file_name), "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": SANDBOX_CSP}


class SecurityHeaders:
    """Adds nosniff, frame and referrer headers to every response; a CSP unless the route set its own: the strict
    page policy on HTML, the sandbox on everything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON:
                    if name not in headers:
                        headers.append(name, value)
                if "content-security-policy" not in headers:
                    is_page = headers.get("content-type", "").startswith("text/html")
                    headers.append("Content-Security-Policy", PAGE_CSP if is_page else SANDBOX_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)
