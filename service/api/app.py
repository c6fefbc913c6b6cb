"""The FastAPI application: routes under ``/api/v1``, domain errors as status codes, a limit
on body size."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from service.api import API_PREFIX
from service.api.deps import UserAuth
from service.api.routes import artifacts, explains, lifecycle, studies, views, work
from service.api.schemas import Health
from service.artifacts import ArtifactStoreError
from service.config import ServiceSettings
from service.coordinator import Coordinator
from service.db import database_errors
from service.errors import Conflict, Invalid, NotFound, StoreError
from service.ui import add_ui

log = logging.getLogger("aelle.service")
RETRY_AFTER_SECONDS = 5  # what a 503 tells clients to wait before trying again


class BodyLimit:
    """Read each request's body whole before the app sees it: over ``limit`` bytes it is
    refused with 413, whether Content-Length says so or the body comes in chunks; a JSON body
    with a non-finite number (the literals NaN and Infinity, or a number like 1e999 that
    overflows to one) is refused with 422 naming where it is, since nothing stored or answered
    may hold one."""

    def __init__(self, app, limit: int, larger: dict[str, int] | None = None):
        self.app, self.default = app, limit
        self.larger = [(re.compile(f"^{path}$"), n) for path, n in (larger or {}).items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = next((n for path, n in self.larger if path.match(scope.get("path", ""))),
                     self.default)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _answer(send, 413, f"request body exceeds {limit} bytes")
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                return await _answer(send, 413, f"request body exceeds {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b"") and _NON_FINITE.search(body):
            where = _non_finite(body)
            if where is not None:
                return await _answer(send, 422, where)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


# what a non-finite number looks like in JSON text: a quick test before a full parse
_NON_FINITE = re.compile(rb"NaN|Infinity|[0-9][eE]\+?[0-9]{3}")


class _Bad:
    """A non-finite number found while parsing."""

    def __init__(self, text: str):
        self.text = text


def _non_finite(body: bytes) -> str | None:
    """Where the body holds a non-finite number, as a message naming the field; None if it
    holds none (or is no JSON: the app's parser says so)."""
    def number(text: str):
        value = float(text)
        return value if math.isfinite(value) else _Bad(text)

    try:
        doc = json.loads(body, parse_constant=_Bad, parse_float=number)
    except ValueError:
        return None
    found = _find_bad(doc, "")
    if found is None:
        return None
    where, text = found
    return (f"{where or 'the body'} must be finite, got {text} (a non-finite number is "
            "refused wherever it stands; report a diverged network as a result with state "
            "'diverged')")


def _find_bad(doc, where: str) -> tuple[str, str] | None:
    if isinstance(doc, _Bad):
        return where, doc.text
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) \
        if isinstance(doc, list) else ()
    for key, value in items:
        found = _find_bad(value, (f"{where}.{key}" if where else key)
                          if isinstance(key, str) else f"{where}[{key}]")
        if found is not None:
            return found
    return None


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: ServiceSettings | None = None,
               coordinator: Coordinator | None = None) -> FastAPI:
    """The app; it builds (and on shutdown closes) its coordinator unless one is given."""
    settings = settings or ServiceSettings()
    settings.require_tokens()
    owned = coordinator is None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.coordinator is None:
            app.state.coordinator = Coordinator(settings)
        app.state.coordinator.start()
        yield
        if owned:
            app.state.coordinator.close()

    # The schema and its pages answer without a token only when asked for: by default health is
    # the one open endpoint, and users read the schema with their token.
    public = {} if settings.public_docs else {"openapi_url": None, "docs_url": None,
                                              "redoc_url": None}
    app = FastAPI(title="AeLLE coordinator", version="1",
                  description="Hyperparameter search for recurrent networks, pruned by their "
                  "Lyapunov spectra. Users hold the user token; workers the worker token.",
                  lifespan=lifespan, **public)
    app.state.settings = settings
    app.state.coordinator = coordinator

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", response_model=Health, tags=["health"])
    def health(request: Request):
        """Open: the coordinator answers, and its database too, with its tables."""
        request.app.state.coordinator.db.ping(tables=True)
        return {"status": "ok", "database": "ok"}

    @api.get("/openapi.json", dependencies=UserAuth, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        """The OpenAPI schema of this API (user token)."""
        return JSONResponse(request.app.openapi())

    api.include_router(studies.router)
    api.include_router(views.router)
    api.include_router(work.router)
    api.include_router(lifecycle.router)
    api.include_router(artifacts.uploads)
    api.include_router(artifacts.downloads)
    api.include_router(explains.router)
    app.include_router(api)
    add_ui(app)

    def handler(code: int):
        async def handle(request: Request, exc: Exception):
            return JSONResponse({"detail": str(exc)}, status_code=code)
        return handle

    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(Conflict, handler(409))
    app.add_exception_handler(Invalid, handler(422))

    async def store_error(request: Request, exc: Exception):
        # the driver's text can hold the URL or the statement: logged, never answered
        log.error("database error on %s %s: %r", request.method, request.url.path,
                  exc.__cause__ if isinstance(exc, StoreError) else exc)
        return JSONResponse({"detail": "the database is unavailable; try again"},
                            status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    # every way a database failure comes out, the project's and Optuna's storage's alike
    for kind in database_errors():
        app.add_exception_handler(kind, store_error)
    async def artifact_store_error(request: Request, exc: Exception):
        return JSONResponse({"detail": str(exc)}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    app.add_exception_handler(ArtifactStoreError, artifact_store_error)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes,
                       larger={API_PREFIX + artifacts.UPLOAD_PATH: settings.artifact_max_bytes,
                               API_PREFIX + explains.UPLOAD_PATH: settings.explain_max_bytes})
    return app
