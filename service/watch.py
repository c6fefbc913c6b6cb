"""``aelle watch NAME``: a study live in the terminal, for machines without a browser.

It reads what the page at ``/ui`` reads (the study's summary, its trials) through the same
authenticated API, redrawing a rich table every few seconds until the study is done.
"""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from aelle.cli import positive
from aelle.client import done
from service.user_cli import client_for, user_options

STATE_STYLE = {"running": "bold green", "waiting": "dim", "complete": "blue",
               "pruned": "dark_orange", "diverged": "bold red", "failed": "magenta"}
ORDER = ["running", "waiting", "complete", "pruned", "diverged", "failed"]


def add_watch_parser(sub) -> None:
    p = sub.add_parser("watch", help="a study's trials, live, in the terminal")
    user_options(p)
    p.add_argument("study")
    p.add_argument("--every", type=positive(float), default=2.0, metavar="SECONDS",
                   help="seconds between refreshes (default 2)")
    p.add_argument("--rows", type=positive(int), default=25,
                   help="trials shown: the running ones, then the latest (default 25)")
    p.add_argument("--once", action="store_true", help="print the table once and exit")
    p.set_defaults(func=run_watch)


def _progress(summary: dict) -> tuple[ProgressBar, str]:
    """The bar of the budget that binds: epochs where the study has an epoch budget."""
    if summary.get("budget_epochs") is not None:
        used, total = summary["epochs_used"], summary["budget_epochs"]
        words = f"{used}/{total} epochs, {summary['used']} trials"
    else:
        used, total = summary["used"], summary["budget"]
        words = f"{used}/{total} trials"
    return ProgressBar(total=max(total, 1), completed=min(used, total), width=30), words


def view(summary: dict, trials: list[dict], rows: int):
    """The study as a renderable: its header with a progress bar, then its trials."""
    c = summary["counts"]
    head = Table.grid(padding=(0, 2))
    head.add_row(Text(summary["name"], style="bold"), *_progress(summary))
    best = summary["best"]
    total = summary["epochs_trained"] + summary["epochs_saved"]
    saved = (f"{summary['epochs_saved']} epochs ({100 * summary['epochs_saved'] / total:.0f}%)"
             if total else "-")
    head.add_row(", ".join(f"{c[s]} {s}" for s in ORDER if c.get(s)) or "no trials yet",
                 f"best {best['value']:.4g} (#{best['number']})" if best else "best -",
                 f"saved {saved}")
    if summary["stopped"]:
        head.add_row(Text("stopped" + (f": {summary['stop_reason']}"
                                       if summary.get("stop_reason") else ""), style="yellow"))
    table = Table(expand=True)
    for name, justify in [("#", "right"), ("state", "left"), ("epoch", "right"),
                          ("value", "right"), ("max LE", "right"), ("mean LE", "right"),
                          ("predicted", "right"), ("decision", "left"), ("reason", "left")]:
        table.add_column(name, justify=justify, overflow="ellipsis",
                         no_wrap=name != "reason", ratio=3 if name == "reason" else None)
    for t in shown(trials, rows):
        value = t["value"] if t["value"] is not None else t["last_value"]
        table.add_row(str(t["number"]), Text(t["state"], style=STATE_STYLE.get(t["state"], "")),
                      str(t["epochs"] - 1) if t["epochs"] else "-", _num(value),
                      _signed(t["max_le"]), _signed(t["mean_le"]), _num(t["prediction"]),
                      t["decision"] or "-", t["reason"] or "")
    if len(trials) > rows:
        table.caption = f"{rows} of {len(trials)} trials shown"
    return Group(head, table)


def shown(trials: list[dict], rows: int) -> list[dict]:
    """The running trials first, then the latest others, by number."""
    running = [t for t in trials if t["state"] == "running"]
    rest = [t for t in trials if t["state"] != "running"]
    keep = {t["number"] for t in (running + rest[::-1])[:rows]}
    return [t for t in trials if t["number"] in keep]


def run_watch(args) -> int:
    name = args.study
    with client_for(args) as client:

        def frame():
            summary = client.study(name)
            return summary, view(summary, client.trials(name, order="number"), args.rows)

        console = Console()
        summary, shown_now = frame()
        if args.once:
            console.print(shown_now)
            return 0
        try:
            with Live(shown_now, console=console, refresh_per_second=4) as live:
                while not done(summary):
                    time.sleep(args.every)
                    summary, shown_now = frame()
                    live.update(shown_now)
        except KeyboardInterrupt:
            return 0
    return 0


def _num(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _signed(v) -> str:
    return "-" if v is None else f"{v:+.3f}"
