"""``/api/docs``: Swagger UI from the vendored bundle under ``api/static/vendor/swagger-ui``.

FastAPI's own page loads Swagger UI from a CDN (blank without internet) and starts it with an inline script the page
CSP refuses, so the page here names only our files and ``api/static/api-docs.js`` starts the viewer.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

DOCS_URL = "/api/docs"
VENDOR = "/static/vendor/swagger-ui"


def page(title: str, openapi_url: str) -> str:
    """The viewer's HTML: no inline script or style, the document's address in a data attribute."""
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)} – API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{VENDOR}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
  <script src="{VENDOR}/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve the viewer at ``/api/docs``; create the app with ``docs_url=None`` so FastAPI's CDN page is gone."""
    html = page(app.title, app.openapi_url or "/openapi.json")

    @app.get(DOCS_URL, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(html)
