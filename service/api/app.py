"""The FastAPI application: routes under ``/api/v1``, domain errors as status codes, a limit
on body size."""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from service.api import API_PREFIX
from service.api.deps import UserAuth
from service.api.routes import studies, work
from service.api.schemas import Health
from service.config import ServiceSettings
from service.coordinator import Coordinator
from service.errors import Conflict, Invalid, NotFound, StoreError

log = logging.getLogger("aelle.service")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, whether or not Content-Length says so."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            return await self.app(scope, limited, send)
        except _TooLarge:
            return await self._refuse(send)

    async def _refuse(self, send):
        body = (b'{"detail":"request body exceeds ' + str(self.limit).encode()
                + b' bytes"}')
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


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
        """Open: the coordinator answers and its database too."""
        request.app.state.coordinator.db.ping()
        return {"status": "ok", "database": "ok"}

    @api.get("/openapi.json", dependencies=UserAuth, include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        """The OpenAPI schema of this API (user token)."""
        return JSONResponse(request.app.openapi())

    api.include_router(studies.router)
    api.include_router(work.router)
    app.include_router(api)

    def handler(code: int):
        async def handle(request: Request, exc: Exception):
            return JSONResponse({"detail": str(exc)}, status_code=code)
        return handle

    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(Conflict, handler(409))
    app.add_exception_handler(Invalid, handler(422))

    async def store_error(request: Request, exc: Exception):
        log.error("database error on %s %s: %r", request.method, request.url.path,
                  exc.__cause__)
        return JSONResponse({"detail": "the database is unavailable; try again"},
                            status_code=503)

    app.add_exception_handler(StoreError, store_error)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
