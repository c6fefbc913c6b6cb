"""A study pruned by the shipped joint model: its step-0 screen reads the untrained network's
spectrum from the coordinator's reports, and a real worker runs a rolling screen to its budget
(the planned one: test_planned_screen.py)."""

import httpx
import numpy as np
import optuna

from aelle.pruners import SpectrumStore
from service.pruning import ServiceHooks, build_pruner
from service.specs import StudyCreate
from tests.service.support import API, USER, study
from workers.client import CoordinatorClient
from workers.runtime import Worker


class Recording(SpectrumStore):
    def __init__(self):
        self.asked = []

    def spectrum(self, study, trial, step):
        self.asked.append((trial.number, step))
        return np.linspace(0.0, -2.0, 64)

    def spectra(self, study, trials):
        return {}


def test_the_joint_pruner_of_a_study_reads_the_spectrum_where_the_coordinator_keeps_it():
    store = Recording()
    pruner = build_pruner(StudyCreate.model_validate(study(pruner={
        "name": "joint", "settings": {"inputs": "spectrum"}})), ServiceHooks(store))
    s = optuna.create_study(pruner=pruner)
    trial = s.ask({"arch": optuna.distributions.CategoricalDistribution(["lstm"])})
    trial.report(2.3, 0)
    trial.should_prune()
    assert set(store.asked) == {(trial.number, 0)}


def test_a_rolling_joint_study_runs_to_its_budget(server):
    # finalists: null, the rolling screen (a trial budget alone would plan one)
    rolling = {"name": "joint", "settings": {"finalists": None}}
    r = httpx.post(f"{server}{API}/studies", headers=USER,
                   json=study(name="j", budget=4, epochs=2, pruner=rolling))
    assert r.status_code == 201, r.text
    client = CoordinatorClient(server, "worker-secret-for-tests")
    try:
        done = Worker(client, name="w", burst=True, progress=False).run()
    finally:
        client.close()
    assert sum(done.values()) == 4
    trials = httpx.get(f"{server}{API}/studies/j/trials", headers=USER).json()["data"]
    # the tests' tiny networks predict badly: the screen may refuse every one at epoch 0
    assert len(trials) == 4 and {t["state"] for t in trials} <= {"complete", "pruned"}
    assert all(t["epochs"] == 3 for t in trials if t["state"] == "complete")
    assert all(t["epochs"] == 1 for t in trials if t["state"] == "pruned")
    first = httpx.get(f"{server}{API}/studies/j/trials/{trials[0]['number']}",
                      headers=USER).json()
    assert first["reports"][0]["decision"] in ("continue", "prune")
