"""``aelle serve`` (the coordinator) and ``aelle migrate`` (its database's tables).

A database that does not answer, or cannot be migrated, is a :class:`StoreError`; both
commands turn it into a :class:`aelle.cli.CommandError` (one line, exit 2).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aelle.cli import CommandError
from service.config import ServiceSettings
from service.db import StoreError


def add_serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="run the coordinator (REST API)",
                       description="Run the coordinator. Settings come from AELLE_* "
                       "environment variables: AELLE_DATABASE_URL (default sqlite:///aelle.db), "
                       "AELLE_USER_TOKEN and AELLE_WORKER_TOKEN (required), "
                       "AELLE_HEARTBEAT_INTERVAL, AELLE_GRACE_PERIOD, AELLE_MAX_BODY_BYTES, "
                       "AELLE_PUBLIC_DOCS.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--database-url", help="overrides AELLE_DATABASE_URL")
    p.add_argument("--wait-db", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to this long for the database to answer before starting")
    p.add_argument("--access-log", action="store_true",
                   help="log every request (off by default: workers post a report per epoch, "
                   "and at hundreds a second the log costs more than some requests)")
    p.add_argument("--public-docs", action="store_true",
                   help="serve /openapi.json, /docs and /redoc without a token (default: only "
                   "health is open; users read the schema at /api/v1/openapi.json)")
    p.set_defaults(func=run_serve)


def add_migrate_parser(sub) -> None:
    p = sub.add_parser("migrate", help="create or upgrade the database's tables",
                       description="Bring Optuna's tables and the coordinator's up to date in "
                       "AELLE_DATABASE_URL (the coordinator also does this when it starts).")
    p.add_argument("--database-url", help="overrides AELLE_DATABASE_URL")
    p.add_argument("--wait-db", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to this long for the database to answer")
    p.set_defaults(func=run_migrate)


def settings_from(args) -> ServiceSettings:
    """The environment's settings, with the flags given on top."""
    overrides = {"database_url": args.database_url} if args.database_url else {}
    if getattr(args, "public_docs", False):
        overrides["public_docs"] = True
    return ServiceSettings(**overrides)


@contextlib.contextmanager
def _database_errors() -> Iterator[None]:
    try:
        yield
    except StoreError as e:
        raise CommandError(str(e)) from e


def run_serve(args) -> int:
    import uvicorn

    from service.api.app import create_app
    from service.db import AlreadyServed, Database, SqliteLock
    from service.local import torch_threads_for_the_coordinator

    settings = settings_from(args)
    settings.require_tokens()
    torch_threads_for_the_coordinator()
    with _database_errors():
        if args.wait_db > 0:
            Database(settings.database_url, settings).wait(args.wait_db)
        # refused here in one line, before uvicorn would log a traceback of the same refusal
        probe = SqliteLock(settings.database_url)
        try:
            probe.acquire()
        except AlreadyServed as e:
            raise CommandError(str(e)) from None
        probe.release()
        uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info",
                    access_log=args.access_log)
    return 0


def run_migrate(args) -> int:
    from service.db import Database
    from service.migrations import migrate

    settings = settings_from(args)
    with _database_errors():
        if args.wait_db > 0:
            Database(settings.database_url, settings).wait(args.wait_db)
        done = migrate(settings.database_url)
    print("\n".join(done) if done else "the database is up to date")
    return 0
