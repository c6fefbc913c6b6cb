"""A trial's network as a file: every task's trained run comes back whole from it."""

import io

import pytest
import torch

from tasks import run_trial
from tasks.artifacts import load_trial_model, load_trial_run, pack, unpack
from tests.tasks.conftest import PARAMS, TINY, smnist_params

CASES = {"smnist": smnist_params("lstm"), **PARAMS}


@pytest.mark.parametrize("task", sorted(CASES))
def test_a_rebuilt_network_evaluates_to_the_trained_ones_loss(task, tmp_path):
    params, settings = CASES[task], {**TINY[task], "epochs": 2}
    trained = run_trial(task, params, settings, seed=3)
    path = tmp_path / "net.pt"
    path.write_bytes(pack(trained.run, task, params, settings, seed=3, value=trained.value))
    run = load_trial_run(path)
    assert run.validate() == pytest.approx(trained.value, rel=1e-9)
    model = unpack(path)
    assert (model.task, model.params, model.seed, model.value) == (task, params, 3,
                                                                   trained.value)
    fresh = run_trial(task, params, {**settings, "epochs": 1}, seed=4).run  # other weights
    assert fresh.validate() != pytest.approx(trained.value, rel=1e-9)
    assert isinstance(load_trial_model(path.read_bytes()), torch.nn.Module)


def test_what_is_not_a_trial_model_is_refused_saying_why(tmp_path):
    with pytest.raises(ValueError, match="not a trial model"):
        unpack(b"plainly not a torch file")
    buf = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buf)
    with pytest.raises(ValueError, match="format mark"):
        unpack(buf.getvalue())
    params, settings = CASES["smnist"], TINY["smnist"]
    data = pack(run_trial("smnist", params, settings).run, "smnist", params, settings, seed=0)
    other = {**settings, "hidden": 2 * settings["hidden"]}
    doc = torch.load(io.BytesIO(data), weights_only=True)
    doc["settings"] = {**doc["settings"], "hidden": other["hidden"]}
    buf = io.BytesIO()
    torch.save(doc, buf)
    with pytest.raises(ValueError, match="do not fit task 'smnist'"):
        load_trial_run(buf.getvalue())
    doc["task"] = "no-such-task"
    buf = io.BytesIO()
    torch.save(doc, buf)
    with pytest.raises(Exception, match="no-such-task"):
        load_trial_run(buf.getvalue())
