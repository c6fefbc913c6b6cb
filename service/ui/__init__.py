"""The page at ``/ui``: one HTML file and its static assets, shipped inside the package.

The page holds no data: it asks the user for the user token, keeps it in the browser's session
storage and reads everything through the authenticated API under ``/api/v1``. What is served
here is the same for everyone, so it needs no token; the headers forbid any script or
connection the page does not serve itself.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_PREFIX = "/ui"
PLOTTING = ("uPlot", "1.6.32")  # vendored under static/vendor/, with its licence

_HEADERS = {
    # the token lives in session storage: no script but the page's own may run
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def add_ui(app: FastAPI) -> None:
    """Serve the page at ``/ui`` and its assets under ``/ui/static``."""
    here = files(__name__)
    page = (here / "templates" / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{ui}}", UI_PREFIX).replace("{{uplot}}", PLOTTING[1])

    @app.get(UI_PREFIX, response_class=HTMLResponse, include_in_schema=False)
    async def ui() -> HTMLResponse:
        return HTMLResponse(page, headers=_HEADERS)

    @app.get(f"{UI_PREFIX}/", include_in_schema=False)
    async def ui_slash() -> RedirectResponse:
        return RedirectResponse(UI_PREFIX)

    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=str(here / "static")),
              name="ui-static")
