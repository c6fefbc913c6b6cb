"""``aelle explain``: why trained networks work, as a self-contained HTML report and JSON.

``aelle explain STUDY [--trial N | --top K]`` explains a study's trials: each one's trained
network is downloaded from the coordinator (:class:`aelle.client.Client`), rebuilt by its task
(:func:`tasks.artifacts.load_trial_run`), explained with its spectra of every epoch, and
written as ``OUT/trial-N.html`` and ``OUT/trial-N.json``; ``--upload`` stores both on the
coordinator (``GET /studies/{name}/trials/{n}/explain`` serves them). Without a study it
explains one network given here (:func:`tasks.explain_cli.run_network`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from aelle.cli import CommandError
from aelle.client import ApiError as ClientError
from aelle.client import Client
from aelle.explain import report_json, write_report
from service.user_cli import client_for, user_options
from tasks.artifacts import load_trial_run, unpack
from tasks.explain_cli import add_network_options, explain_run, run_network
from tasks.plugins import import_task_module
from tasks.registry import names

NETWORK_OPTIONS = ("task", "params", "state_dict", "train", "set", "save_state_dict")
STUDY_OPTIONS = ("trial", "top", "upload", "url", "token")


def add_explain_parser(sub) -> None:
    p = sub.add_parser("explain", help="explain trained networks: HTML report and JSON",
                       description="Linearisation, fixed points and their transitions, Koopman "
                       "matrix, single-unit responses (LSTM) and Lyapunov views of trained "
                       "networks. With a STUDY: its best trial's (--trial N, --top K) from the "
                       "coordinator, written as OUT/trial-N.html and OUT/trial-N.json "
                       "(--upload: also stored there). Without one: the network of --task and "
                       "--params, written as OUT/explain.html and OUT/explain.json.")
    p.add_argument("study", nargs="?", help="a study on the coordinator")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, metavar="N", help="explain trial N")
    which.add_argument("--top", type=int, metavar="K",
                       help="explain the K best completed trials (default: the best)")
    p.add_argument("--upload", action="store_true",
                   help="store each report (JSON and HTML) on the coordinator")
    user_options(p)
    p.add_argument("--task-module", action="append", default=[], metavar="PKG.MODULE",
                   help="import this module and register its tasks first (repeatable)")
    add_network_options(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("explain-output"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_explain)


def run_explain(args) -> int:
    for module in args.task_module:
        import_task_module(module)
    if args.study is None:
        given = [_flag(o) for o in STUDY_OPTIONS if getattr(args, o) not in (None, False)]
        if given:
            raise CommandError(f"{', '.join(given)} need a STUDY (aelle explain STUDY ...)")
        return run_network(args)
    given = [_flag(o) for o in NETWORK_OPTIONS if getattr(args, o) not in (None, False, [])]
    if given:
        raise CommandError(f"{', '.join(given)} explain one network without a study; a "
                           "study's trials bring their own task, parameters and network")
    return run_study(args)


def run_study(args) -> int:
    with client_for(args) as client:
        numbers = trial_numbers(client, args.study, args.trial, args.top)
        done, failed = [], []
        for number in numbers:
            try:
                done.append(explain_trial(client, args, number))
            except CommandError as e:
                failed.append(str(e))
                print(f"aelle explain: {e}", file=sys.stderr)
    if not done:
        raise CommandError("; ".join(failed))
    return 1 if failed else 0


def trial_numbers(client: Client, study: str, trial: int | None, top: int | None) -> list[int]:
    """The trials to explain: ``trial``, or the ``top`` best completed ones (default 1)."""
    client.study(study)  # an unknown study: its 404 names it
    if trial is not None:
        client.trial(study, trial)
        return [trial]
    if top is not None and top < 1:
        raise CommandError(f"--top must be at least 1, got {top}")
    best = client.trials(study, state="complete", top=top or 1)
    if not best:
        raise CommandError(f"study {study!r} has no completed trial yet")
    return [t["number"] for t in best]


def explain_trial(client: Client, args, number: int) -> Path:
    """Download, rebuild, explain and write (and with ``--upload`` store) one trial's network;
    CommandError saying why one cannot be."""
    study = args.study
    try:
        data = client.download(study, number)
    except ClientError as e:
        if e.status != 404:
            raise
        raise CommandError(f"trial {number}: {e.detail}") from None
    try:
        stored = unpack(data)
    except ValueError as e:
        raise CommandError(f"trial {number}: the stored network cannot be read: {e}") from None
    if stored.task not in names():
        raise CommandError(f"trial {number} is a network of task {stored.task!r}, which is "
                           f"not installed here (known: {', '.join(names())}): install its "
                           "package, or import its module with --task-module")
    try:
        run = load_trial_run(stored)
    except ValueError as e:
        raise CommandError(f"trial {number}: {e}") from None
    detail = client.trial(study, number)
    reports = [r for r in detail["reports"] if r["spectrum"] is not None]
    value = run.validate()
    if not args.quiet:
        print(f"trial {number} of {study}: {stored.task} {stored.params}, "
              f"validation {value:.4f}", flush=True)
    try:
        exp = explain_run(stored.task, stored.params, run, value,
                          title=f"{study}, trial {number}: {stored.task} "
                          f"{stored.params.get('arch', '')} network",
                          meta={"study": study, "trial": number,
                                "trial value": detail["value"]},
                          epochs=[r["epoch"] for r in reports],
                          spectra=[r["spectrum"] for r in reports],
                          progress=not args.quiet, seed=args.seed)
    except (TypeError, ValueError) as e:  # a network the methods cannot read: say which
        raise CommandError(f"trial {number}: its {stored.task} network cannot be explained: "
                           f"{e}") from None
    html_path, json_path = write_report(exp, args.out, stem=f"trial-{number}")
    print(f"trial {number}: wrote {html_path} and {json_path}")
    if args.upload:
        got = client.upload_explain(study, number, report_json(exp), html_path.read_text())
        print(f"trial {number}: stored on the coordinator ({got['size']} bytes)")
    return html_path


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")
