"""Synthetic trials for the pruner tests: a quality q in [0, 1] sets both the spectrum's slope
and the final value (1 + 2q, minimised), so "good" trials (low q) have the flatter spectra, a
higher mean exponent, and a pruner can learn that."""

import numpy as np
import optuna
from optuna.trial import TrialState, create_trial

from aelle import AeLLEConfig, AeLLEPruner, report_spectrum

FAST = AeLLEConfig(dim=16, hidden=(16,), latent=4, epochs=120, warmup_epochs=30,
                   ramp_epochs=30, components=2, seed=0)
STEPS = 3


def spectrum(q, k=12, step=0, noise=0.0, rng=None):
    x = np.linspace(0, 1, k)
    z = 0.05 - (0.3 + q) * x * (1 + 0.1 * step)
    return z + (noise * rng.standard_normal(k) if rng is not None else 0.0)


def final(q):
    return 1.0 + 2.0 * q


def seed_completed(study, n, seed=0):
    """Add ``n`` completed trials, each with a spectrum and value at every step."""
    rng = np.random.default_rng(seed)
    for q in rng.uniform(0, 1, n):
        study.add_trial(create_trial(
            value=final(q),
            intermediate_values={s: final(q) + 1.0 / (s + 1) for s in range(STEPS)},
            user_attrs={f"aelle:spectrum:{s}": spectrum(q, step=s, noise=0.01, rng=rng).tolist()
                        for s in range(STEPS)},
        ))


def step_once(study, q, step=0, value=None, with_spectrum=True, z=None, complete=None):
    """Ask a trial, report one step, and return (should_prune, its aelle:* attributes). The
    trial then ends pruned (or failed), or completes with ``complete`` as its value."""
    trial = study.ask()
    trial.report(final(q) + 1.0 if value is None else value, step)
    if with_spectrum:
        report_spectrum(trial, spectrum(q, step=step) if z is None else z, step)
    pruned = trial.should_prune()
    if complete is not None:
        study.tell(trial, complete)
    else:
        study.tell(trial, state=TrialState.PRUNED if pruned else TrialState.FAIL)
    attrs = study.trials[trial.number].user_attrs
    return pruned, {k[len("aelle:"):]: v for k, v in attrs.items()
                    if k.startswith("aelle:") and not k.startswith("aelle:spectrum")}


def aelle_study(n_completed=16, **kw):
    kw = {"n_startup_trials": 8, "explore": 0.0, "seed": 0, "config": FAST,
          "background": False, **kw}
    pruner = AeLLEPruner(**kw)
    study = optuna.create_study(pruner=pruner)
    seed_completed(study, n_completed)
    return study, pruner
