"""The user's commands, HTTP clients of a running coordinator: ``aelle submit``, ``aelle
studies``, ``aelle trials``.

The coordinator's address and the user token come from :class:`ClientSettings`
(``AELLE_URL``, ``AELLE_USER_TOKEN``); ``--url`` and ``--token`` override them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from aelle.cli import CommandError, assignment, table
from service.api import API_PREFIX
from service.config import ClientSettings
from service.states import TrialState

REQUEST_TIMEOUT = 60.0  # seconds; creating a study may wait for the database's locks


class ApiError(CommandError):
    """The coordinator could not be reached, or refused the request (its explanation)."""


def _user_options(p) -> None:
    p.add_argument("--url", help="the coordinator (default $AELLE_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="the user token (default $AELLE_USER_TOKEN)")


def add_submit_parser(sub) -> None:
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


def add_studies_parser(sub) -> None:
    p = sub.add_parser("studies", help="list the studies")
    _user_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_studies)


def add_trials_parser(sub) -> None:
    p = sub.add_parser("trials", help="a study's trials, ranked")
    _user_options(p)
    p.add_argument("study")
    p.add_argument("--top", type=int)
    p.add_argument("--state", choices=[str(s) for s in TrialState])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_trials)


def settings_from(args) -> ClientSettings:
    """The environment's settings, with the flags given on top."""
    given = {"url": args.url, "user_token": args.token}
    return ClientSettings(**{k: v for k, v in given.items() if v is not None})


def call(settings: ClientSettings, method: str, path: str, body: Any = None) -> Any:
    """``method path`` under the API's prefix; the decoded answer, or ApiError."""
    token = settings.user_token.get_secret_value() if settings.user_token else ""
    if not token:
        raise CommandError("a user token is required (--token or AELLE_USER_TOKEN)")
    try:
        r = httpx.request(method, settings.url.rstrip("/") + API_PREFIX + path, json=body,
                          headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT)
    except httpx.TransportError as e:
        raise ApiError(f"cannot reach the coordinator at {settings.url}: {e}") from None
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text
        raise ApiError(f"{r.status_code}: {detail}")
    return r.json()


def study_from(args) -> dict:
    """The study to create: the file's mapping, with the flags given on top."""
    spec: dict[str, Any] = {}
    if args.file is not None:
        import yaml

        try:
            spec = yaml.safe_load(args.file.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise CommandError(f"cannot read the study file {args.file}: {e}") from None
        if not isinstance(spec, dict):
            raise CommandError(f"{args.file}: a study file holds a mapping (name, task, "
                               "budget, ...)")
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
    got = call(settings_from(args), "POST", "/studies", study_from(args))
    print(f"created study {got['name']}: task {got['task']}, budget {got['budget']}, "
          f"pruner {got['pruner']}")
    return 0


def run_studies(args) -> int:
    got = call(settings_from(args), "GET", "/studies")
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
    got = call(settings_from(args), "GET",
               f"/studies/{args.study}/trials" + (f"?{qs}" if qs else ""))
    if args.json:
        print(json.dumps(got["data"], indent=1))
        return 0
    print(table(trial_rows(got["data"])))
    return 0


def trial_rows(trials: list[dict]) -> list[list[str]]:
    """The rows of :func:`aelle.cli.table` for trials as the API lists them, header first."""
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
