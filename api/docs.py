"""The API's documentation page, `/docs` (Swagger UI), with its script and style served by the
API itself: no CDN, so it works where the browser cannot reach the internet.

The files come from the `fastapi-offline` package (Swagger UI 5, which reads OpenAPI 3.1); only its
files are used, the page is FastAPI's own. There is no `/redoc`: ReDoc's bundle still fetches its
logo from a CDN.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

FILES = Path(fastapi_offline.__file__).parent / "static"
AT = "/static/docs"
ICON = "/static/console/favicon.svg"


def install(app: FastAPI) -> None:
    """Serve `/docs` (the app is made with `docs_url=None, redoc_url=None`)."""
    app.mount(AT, StaticFiles(directory=FILES), name="docs-static")
    openapi = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi}",
            title=f"{app.title} · API",
            swagger_js_url=f"{root}{AT}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{AT}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ICON}",
        )
