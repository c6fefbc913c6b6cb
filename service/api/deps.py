"""Dependencies of the routes: the coordinator, and the two bearer tokens.

They are ``async``: they do no I/O, and FastAPI runs a plain ``def`` dependency in its thread
pool, a hop that cost more than the check itself on every request.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.coordinator import Coordinator

_bearer = HTTPBearer(auto_error=False)


async def coordinator(request: Request) -> Coordinator:
    return request.app.state.coordinator


def _check(request: Request, creds: HTTPAuthorizationCredentials | None, role: str) -> None:
    expected = getattr(request.app.state.settings, f"{role}_token")
    given = creds.credentials if creds is not None else ""
    # compare_digest: the time taken does not tell how much of a guess was right
    if expected is None or not secrets.compare_digest(given.encode(),
                                                      expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"a valid {role} token is required",
                            headers={"WWW-Authenticate": "Bearer"})


async def user(request: Request,
         creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    _check(request, creds, "user")


async def worker(request: Request,
           creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    _check(request, creds, "worker")


CoordinatorDep = Annotated[Coordinator, Depends(coordinator)]
UserAuth = [Depends(user)]
WorkerAuth = [Depends(worker)]
