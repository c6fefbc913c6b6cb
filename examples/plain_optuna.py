"""AeLLE as a drop-in pruner for a plain Optuna script.

The objective reports the validation loss with ``trial.report`` and the network's Lyapunov
spectrum with ``aelle.report_spectrum`` after every epoch, then asks ``trial.should_prune()``.
The AeLLE pruner learns, from the trials that complete, which spectra end in a good loss, and
prunes new trials whose spectrum predicts a final loss worse than the median.

    python examples/plain_optuna.py --trials 40 --startup 10 --set epochs=6
    python examples/plain_optuna.py --pruner max_le          # the LE-threshold baseline
    python examples/plain_optuna.py --pruner median          # Optuna's median pruner
    python examples/plain_optuna.py --finalists 3             # the joint model's planned screen

With ``--finalists K`` the study is a planned screen: every one of its ``--trials``
configurations stops at epoch 0 with the shipped joint model's prediction, then
``queue_finalists`` queues the K best, and a second ``optimize`` trains them from the seed
they were screened with (``seed_of``).

Any training loop works the same way: the only AeLLE-specific line in ``objective`` is the
``report_spectrum`` call (``aelle.lyapunov_spectrum`` gives the spectrum of any torch RNN).
"""

from __future__ import annotations

import argparse
import sys

import optuna

import aelle
from aelle.pruners import SPECTRUM, make, queue_finalists, seed_of
from tasks import get, run_trial
from tasks.cli import assignment
from tasks.hyperparameters import hp_features


def objective_for(task_name: str, settings: dict):
    task = get(task_name)

    def objective(trial: optuna.Trial) -> float:
        params = task.suggest(trial)

        def after_epoch(report) -> bool:
            trial.report(report.value, report.epoch)
            if report.spectrum is not None:
                aelle.report_spectrum(trial, report.spectrum, report.epoch)
            return not trial.should_prune()  # False stops training

        # a planned screen's finalist trains the network its configuration was screened as
        outcome = run_trial(task, params, settings, seed=seed_of(trial), callback=after_epoch)
        if outcome.state == "diverged":  # a non-finite loss or state: no value to report
            trial.set_user_attr("diverged", outcome.reason)
            raise optuna.TrialPruned(outcome.reason)
        if outcome.state == "pruned":
            raise optuna.TrialPruned(outcome.reason)
        return outcome.value

    return objective


def make_pruner(name: str, startup: int, seed: int) -> optuna.pruners.BasePruner:
    if name in SPECTRUM:
        return make(name, n_startup_trials=startup, seed=seed)
    if name == "median":
        return make(name, n_startup_trials=startup)
    return make(name)


def run_study(task: str = "smnist", trials: int = 30, startup: int = 10,
              pruner: str | optuna.pruners.BasePruner = "aelle", settings: dict | None = None,
              seed: int = 0, finalists: int | None = None) -> optuna.Study:
    get(task).settings(settings)  # bad settings fail here, not inside the first trial
    if finalists is not None:  # the joint model reads the zoo's hyperparameters
        chosen = make("joint", task=task, finalists=finalists,
                      hp_of=lambda params: hp_features(task, params, settings))
    else:
        chosen = make_pruner(pruner, startup, seed) if isinstance(pruner, str) else pruner
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), pruner=chosen)
    objective = objective_for(task, settings or {})
    study.optimize(objective, n_trials=trials)
    if finalists is not None:  # the screen is over: train its best again, to the end
        study.optimize(objective, n_trials=len(queue_finalists(study, chosen, finalists)))
    if isinstance(chosen, aelle.AeLLEPruner):
        chosen.wait()  # let a refit still running in the background finish
    return study


def summary(study: optuna.Study) -> str:
    states = [t.state.name.lower() for t in study.trials]
    decisions = [t.user_attrs.get("aelle:decision") for t in study.trials]
    lines = [f"{len(states)} trials: {states.count('complete')} complete, "
             f"{states.count('pruned')} pruned "
             f"({decisions.count('prune')} by the model, "
             f"{decisions.count('diverged')} diverged, "
             f"{decisions.count('explore')} kept to explore)"]
    done = [t for t in study.trials if t.value is not None]
    if done:
        best = study.best_trial
        lines.append(f"best: trial {best.number} value {best.value:.4f} params {best.params}")
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    lines.append(f"epochs trained (incl. epoch 0 evaluations): {epochs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="smnist", choices=["smnist", "charrnn", "signal"])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--startup", type=int, default=10, help="trials completed before pruning")
    ap.add_argument("--pruner", default="aelle",
                    choices=["aelle", "max_le", "mean_le", "median", "study_median", "none"])
    ap.add_argument("--set", type=assignment, action="append", default=[], metavar="NAME=VALUE",
                    help="a task setting, repeatable (e.g. epochs=6)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--finalists", type=int, metavar="K", help="a planned screen instead: "
                    "screen --trials configurations at epoch 0, then train the K best")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.startup < 0:
        ap.error("--trials must be positive and --startup non-negative")
    if args.finalists is not None and not 1 <= args.finalists <= args.trials:
        ap.error("--finalists must be between 1 and --trials")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = run_study(args.task, args.trials, args.startup, args.pruner, dict(args.set),
                          args.seed, args.finalists)
    except ValueError as e:  # a bad setting: say which
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
