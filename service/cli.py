"""``aelle serve`` (the coordinator) and the user's commands: ``submit``, ``studies``,
``trials``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from tasks.cli import assignment


def _user_options(p) -> None:
    p.add_argument("--url", default=os.environ.get("AELLE_URL", "http://127.0.0.1:8000"),
                   help="the coordinator (default $AELLE_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", default=os.environ.get("AELLE_USER_TOKEN"),
                   help="the user token (default $AELLE_USER_TOKEN)")


def add_service_parsers(sub) -> None:
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

    p = sub.add_parser("migrate", help="create or upgrade the database's tables",
                       description="Bring Optuna's tables and the coordinator's up to date in "
                       "AELLE_DATABASE_URL (the coordinator also does this when it starts).")
    p.add_argument("--database-url", help="overrides AELLE_DATABASE_URL")
    p.add_argument("--wait-db", type=float, default=0.0, metavar="SECONDS",
                   help="wait up to this long for the database to answer")
    p.set_defaults(func=run_migrate)

    p = sub.add_parser("submit", help="create a study from a YAML/JSON file or flags")
    _user_options(p)
    p.add_argument("file", nargs="?", type=Path, help="a study file (YAML or JSON)")
    p.add_argument("--name")
    p.add_argument("--task")
    p.add_argument("--budget", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--pruner", help="aelle, median, hyperband, successive_halving, none, "
                   "max_le, mean_le")
    p.add_argument("--shadow", action="store_true", help="record the pruner's decisions only")
    p.add_argument("--sampler", help="tpe or random")
    p.add_argument("--seed", type=int)
    p.add_argument("--direction", choices=["minimize", "maximize"])
    p.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="a task setting, repeatable")
    p.set_defaults(func=run_submit)

    p = sub.add_parser("studies", help="list the studies")
    _user_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_studies)

    p = sub.add_parser("trials", help="a study's trials, ranked")
    _user_options(p)
    p.add_argument("study")
    p.add_argument("--top", type=int)
    p.add_argument("--state", choices=["running", "waiting", "complete", "pruned", "diverged",
                                       "failed"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_trials)


def run_serve(args) -> int:
    import uvicorn

    from service.api.app import create_app
    from service.config import ServiceSettings

    overrides = {"database_url": args.database_url} if args.database_url else {}
    if args.public_docs:
        overrides["public_docs"] = True
    settings = ServiceSettings(**overrides)
    settings.require_tokens()
    torch_threads_for_the_coordinator()
    if args.wait_db > 0:
        from service.db import Database

        Database(settings.database_url).wait(args.wait_db)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info",
                access_log=args.access_log)
    return 0


def run_migrate(args) -> int:
    from service.config import ServiceSettings
    from service.db import Database
    from service.migrations import migrate

    url = args.database_url or ServiceSettings().database_url
    if args.wait_db > 0:
        Database(url).wait(args.wait_db)
    done = migrate(url)
    print("\n".join(done) if done else "the database is up to date")
    return 0


def torch_threads_for_the_coordinator() -> None:
    """The coordinator only fits AeLLE's small MLP, beside the workers on the same cores:
    one torch thread is as fast for it and does not oversubscribe the machine."""
    import torch

    torch.set_num_threads(1)


class ApiError(RuntimeError):
    pass


def call(args, method: str, path: str, body: Any = None) -> Any:
    if not args.token:
        raise ValueError("a user token is required (--token or AELLE_USER_TOKEN)")
    try:
        r = httpx.request(method, args.url.rstrip("/") + "/api/v1" + path, json=body,
                          headers={"Authorization": f"Bearer {args.token}"}, timeout=60)
    except httpx.TransportError as e:
        raise ApiError(f"cannot reach the coordinator at {args.url}: {e}") from None
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        raise ApiError(f"{r.status_code}: {detail}")
    return r.json()


def study_from(args) -> dict:
    spec: dict[str, Any] = {}
    if args.file is not None:
        import yaml

        try:
            spec = yaml.safe_load(args.file.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"cannot read the study file {args.file}: {e}") from None
        if not isinstance(spec, dict):
            raise ValueError(f"{args.file}: a study file holds a mapping (name, task, budget, "
                             "...)")
    for key in ("name", "task", "budget", "epochs", "direction"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    if args.pruner or args.shadow:
        spec["pruner"] = {**spec.get("pruner", {}), **({"name": args.pruner} if args.pruner
                                                        else {}), "shadow": args.shadow}
    if args.sampler or args.seed is not None:
        spec["sampler"] = {**spec.get("sampler", {}),
                           **({"name": args.sampler} if args.sampler else {}),
                           **({"seed": args.seed} if args.seed is not None else {})}
    if args.set:
        spec["settings"] = {**spec.get("settings", {}), **dict(args.set)}
    return spec


def run_submit(args) -> int:
    got = call(args, "POST", "/studies", study_from(args))
    print(f"created study {got['name']}: task {got['task']}, budget {got['budget']}, "
          f"pruner {got['pruner']}")
    return 0


def run_studies(args) -> int:
    got = call(args, "GET", "/studies")
    if args.json:
        print(json.dumps(got["data"], indent=1))
        return 0
    rows = [["name", "task", "pruner", "used/budget", "complete", "pruned", "running", "best"]]
    for s in got["data"]:
        c = s["counts"]
        rows.append([s["name"], s["task"], s["pruner"] + (" (shadow)" if s["shadow"] else ""),
                     f"{s['used']}/{s['budget']}", str(c.get("complete", 0)),
                     str(c.get("pruned", 0) + c.get("diverged", 0)), str(c.get("running", 0)),
                     "-" if s["best"] is None else f"{s['best']['value']:.4g}"])
    print(table(rows))
    return 0


def run_trials(args) -> int:
    query = {"top": args.top, "state": args.state}
    qs = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    got = call(args, "GET", f"/studies/{args.study}/trials" + (f"?{qs}" if qs else ""))
    if args.json:
        print(json.dumps(got["data"], indent=1))
        return 0
    print(table(trial_rows(got["data"])))
    return 0


def trial_rows(trials: list[dict]) -> list[list[str]]:
    rows = [["#", "state", "value", "epochs", "max LE", "predicted", "params", "why"]]
    for t in trials:
        value = t["value"] if t["value"] is not None else t["last_value"]
        params = " ".join(f"{k}={_short(v)}" for k, v in t["params"].items())
        rows.append([str(t["number"]), t["state"], "-" if value is None else f"{value:.4f}",
                     str(t["epochs"]), "-" if t["max_le"] is None else f"{t['max_le']:+.3f}",
                     "-" if t["prediction"] is None else f"{t['prediction']:.4f}", params,
                     (t["reason"] or "")[:60]])
    return rows


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

