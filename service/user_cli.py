"""The user's commands, through :class:`aelle.client.Client` to a running coordinator:
``aelle submit``, ``aelle studies``, ``aelle trials`` (``--download N``: a trial's trained
network), ``aelle study stop|resume|budget|requeue|delete``.

The coordinator's address and the user token come from :class:`ClientSettings`
(``AELLE_URL``, ``AELLE_USER_TOKEN``); ``--url`` and ``--token`` override them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aelle.cli import CommandError, assignment, table
from aelle.client import ApiError as ClientError
from aelle.client import Client
from service.config import ClientSettings
from service.states import TrialState

REQUEST_TIMEOUT = 60.0  # seconds; creating a study may wait for the database's locks


class ApiError(CommandError):
    """The coordinator could not be reached, or refused the request (its explanation)."""


def user_options(p) -> None:
    p.add_argument("--url", help="the coordinator (default $AELLE_URL or http://127.0.0.1:8000)")
    p.add_argument("--token", help="the user token (default $AELLE_USER_TOKEN)")


def add_submit_parser(sub) -> None:
    p = sub.add_parser("submit", help="create a study from a YAML/JSON file or flags")
    user_options(p)
    p.add_argument("file", nargs="?", type=Path, help="a study file (YAML or JSON)")
    p.add_argument("--name")
    p.add_argument("--task")
    p.add_argument("--budget", type=int, help="the most trials it starts (re-runs aside): "
                   "with the default pruner, the configurations screened before the best 3 "
                   "train")
    p.add_argument("--budget-epochs", type=int, help="a compute budget: no trial starts once "
                   "its trials have trained this many epochs")
    p.add_argument("--epochs", type=int, help="epochs a trial trains for")
    p.add_argument("--pruner", help="joint (the default), aelle, median, hyperband, "
                   "successive_halving, none, max_le, mean_le")
    p.add_argument("--shadow", action="store_true", help="record the pruner's decisions only")
    p.add_argument("--finalists", type=int, metavar="K", help="a planned screen (the joint "
                   "pruner): screen --budget configurations at epoch 0, then train the K best "
                   "(default 3 where --budget is given)")
    p.add_argument("--sampler", help="tpe or random")
    p.add_argument("--seed", type=int)
    p.add_argument("--direction", choices=["minimize", "maximize"])
    p.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                   help="a task setting, repeatable")
    p.set_defaults(func=run_submit)


def add_studies_parser(sub) -> None:
    p = sub.add_parser("studies", help="list the studies")
    user_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_studies)


def add_trials_parser(sub) -> None:
    p = sub.add_parser("trials", help="a study's trials, ranked")
    user_options(p)
    p.add_argument("study")
    p.add_argument("--top", type=int)
    p.add_argument("--state", choices=[str(s) for s in TrialState])
    p.add_argument("--json", action="store_true")
    p.add_argument("--download", type=int, metavar="N",
                   help="write trial N's trained network to --out (aelle.load_trial_model "
                   "reads it)")
    p.add_argument("--out", type=Path, help="where --download writes (default "
                   "<study>-trial-<N>.pt)")
    p.set_defaults(func=run_trials)


def add_study_parser(sub) -> None:
    p = sub.add_parser("study", help="stop, resume, delete a study, raise its budget, queue "
                       "its failed trials again")
    user_options(p)
    p.add_argument("action", choices=["stop", "resume", "budget", "requeue", "delete"])
    p.add_argument("study")
    p.add_argument("budget", nargs="?", type=int, help="budget: the new trial budget")
    p.add_argument("--budget-epochs", type=int, help="budget: the new epoch budget")
    p.add_argument("--yes", action="store_true", help="delete: without asking")
    p.set_defaults(func=run_study)


def settings_from(args) -> ClientSettings:
    """The environment's settings, with the flags given on top."""
    given = {"url": args.url, "user_token": args.token}
    return ClientSettings(**{k: v for k, v in given.items() if v is not None})


@contextlib.contextmanager
def client_for(args) -> Iterator[Client]:
    """The client of the flags' and the environment's coordinator; its errors as ApiError."""
    settings = settings_from(args)
    token = settings.user_token.get_secret_value() if settings.user_token else ""
    if not token:
        raise CommandError("a user token is required (--token or AELLE_USER_TOKEN)")
    try:
        client = Client(settings.url, token, timeout=REQUEST_TIMEOUT)
    except ValueError as e:
        raise CommandError(str(e)) from None
    try:
        yield client
    except ClientError as e:
        raise ApiError(str(e)) from None
    finally:
        client.close()


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
    for key in ("name", "task", "budget", "budget_epochs", "epochs", "direction"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    if args.pruner or args.shadow:
        spec["pruner"] = {**spec.get("pruner", {}), **({"name": args.pruner} if args.pruner
                                                        else {}), "shadow": args.shadow}
    if args.finalists is not None:
        pruner = spec.setdefault("pruner", {})
        name = pruner.setdefault("name", "joint") if isinstance(pruner, dict) else pruner
        if name != "joint":
            raise CommandError(f"--finalists plans the joint pruner's screen, and the study "
                               f"names pruner {name!r}")
        pruner["settings"] = {**pruner.get("settings", {}), "finalists": args.finalists}
    if args.sampler or args.seed is not None:
        spec["sampler"] = {**spec.get("sampler", {}),
                           **({"name": args.sampler} if args.sampler else {}),
                           **({"seed": args.seed} if args.seed is not None else {})}
    if args.set:
        spec["settings"] = {**spec.get("settings", {}), **dict(args.set)}
    return spec


def run_submit(args) -> int:
    with client_for(args) as client:
        got = client.submit(study_from(args))
    print(f"created study {got['name']}: task {got['task']}, budget {budget_words(got)}, "
          f"pruner {got['pruner']}")
    return 0


def run_studies(args) -> int:
    with client_for(args) as client:
        got = client.studies()
    if args.json:
        print(json.dumps(got, indent=1))
        return 0
    rows = [["name", "task", "pruner", "used/budget", "complete", "pruned", "running", "best"]]
    for s in got:
        c = s["counts"]
        rows.append([s["name"], s["task"], s["pruner"] + (" (shadow)" if s["shadow"] else ""),
                     used_words(s), str(c.get("complete", 0)),
                     str(c.get("pruned", 0) + c.get("diverged", 0)), str(c.get("running", 0)),
                     "-" if s["best"] is None else f"{s['best']['value']:.4g}"])
    print(table(rows))
    return 0


def run_trials(args) -> int:
    if args.download is not None:
        out = args.out or Path(f"{args.study}-trial-{args.download}.pt")
        with client_for(args) as client:
            data = client.download(args.study, args.download)
        try:
            out.write_bytes(data)
        except OSError as e:
            raise CommandError(f"cannot write {out}: {e}") from None
        print(f"wrote trial {args.download} of {args.study} to {out} ({len(data)} bytes)")
        return 0
    with client_for(args) as client:
        got = client.trials(args.study, state=args.state, top=args.top)
    if args.json:
        print(json.dumps(got, indent=1))
        return 0
    print(table(trial_rows(got)))
    return 0


def run_study(args) -> int:
    given = args.budget is not None or args.budget_epochs is not None
    if (args.action == "budget") != given:
        raise CommandError("give the new budget with `budget` (aelle study budget NAME N, "
                           "or NAME --budget-epochs E, or both), and only there")
    if args.action == "delete" and not args.yes:
        answer = input(f"delete study {args.study!r} with its trials and networks? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not deleted")
            return 1
    with client_for(args) as client:
        if args.action == "delete":
            got = client.delete(args.study)
            print(f"deleted study {got['name']}: {got['trials']} trials, {got['artifacts']} "
                  f"networks, {got['explains']} explanations")
            return 0
        if args.action == "requeue":
            numbers = client.requeue_failed(args.study)
            print(f"queued again: {', '.join(map(str, numbers)) or 'no failed trial'}")
            return 0
        got = (client.raise_budget(args.study, args.budget, args.budget_epochs)
               if args.action == "budget" else getattr(client, args.action)(args.study))
    print(f"study {got['name']}: budget {budget_words(got)}, used {used_words(got)}, "
          f"{'stopped' if got['stopped'] else 'running'}")
    return 0


def budget_words(study: dict) -> str:
    """``40 trials`` or ``40 trials, 400 epochs``."""
    words = f"{study['budget']} trials"
    if study.get("budget_epochs") is not None:
        words += f", {study['budget_epochs']} epochs"
    return words


def used_words(study: dict) -> str:
    """Used against each budget: ``3/40`` or ``3/40, 120/400 ep``."""
    words = f"{study['used']}/{study['budget']}"
    if study.get("budget_epochs") is not None:
        words += f", {study['epochs_used']}/{study['budget_epochs']} ep"
    return words


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
