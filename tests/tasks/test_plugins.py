"""Tasks from outside the zoo: a module named on the command line, an installed package's
entry point, and the NetworkTask base class they are most simply written with."""

import json
import sys
import textwrap

import pytest
import torch
from optuna.distributions import IntDistribution
from torch import nn

import tasks
from tasks import plugins, registry
from tasks.plugins import PluginError, import_task_module, load_entry_points
from tests.tasks.toy_plugin import Echo, ToyEcho

TINY = {"epochs": 2, "device": "cpu", "batch_size": 32, "spectrum_sequences": 2,
        "spectrum_steps": 16, "spectrum_warmup": 4}


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """Each test's plugins are forgotten after it (the registry is the process's)."""
    monkeypatch.setattr(registry._TASKS, "_items", dict(registry._TASKS._items))
    monkeypatch.setattr(plugins, "_errors", {})
    monkeypatch.delitem(sys.modules, "tests.tasks.toy_plugin", raising=False)


def test_a_task_module_registers_its_tasks_and_trains():
    assert import_task_module("tests.tasks.toy_plugin") == ["toy_echo"]
    assert import_task_module("tests.tasks.toy_plugin") == ["toy_echo"]  # again: the same
    task = tasks.get("toy_echo")
    reports = []
    out = tasks.run_trial("toy_echo", {"hidden": 6, "lr": 1e-2}, TINY, seed=1,
                          callback=reports.append)
    assert out.state == "complete" and [r.epoch for r in reports] == [0, 1, 2]
    # the spectrum the coordinator expects is the one the trial reports
    assert all(r.spectrum.shape == (task.spectrum_size({"hidden": 6, "lr": 1e-2}, TINY),)
               for r in reports)
    assert reports[-1].value < reports[0].value  # it learns
    again = tasks.run_trial("toy_echo", {"hidden": 6, "lr": 1e-2}, TINY, seed=1)
    assert again.value == out.value  # seeded


def test_bad_task_modules_are_named():
    with pytest.raises(PluginError, match=r"'no\.such\.module' could not be imported"):
        import_task_module("no.such.module")
    with pytest.raises(PluginError, match=r"'tests\.tasks\.conftest' defines no task"):
        import_task_module("tests.tasks.conftest")


def test_aelle_train_takes_a_task_module(capsys):
    from aelle.cli import main

    assert main(["train", "--task-module", "tests.tasks.toy_plugin", "--task", "toy_echo",
                 "--param", "hidden=5", "--json", *[f"--set={k}={v}" for k, v in
                                                    TINY.items()]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["epoch"] for r in lines[:-1]] == [0, 1, 2]
    assert lines[-1]["state"] == "complete" and lines[-1]["params"]["hidden"] == 5


def test_aelle_train_names_an_unknown_task(capsys):
    from aelle.cli import main

    assert main(["train", "--task", "toy_echo"]) == 2  # not imported, not installed
    assert f"unknown task 'toy_echo'; known: {', '.join(tasks.names())}" in capsys.readouterr().err


def test_missing_and_bad_parameters_are_refused_before_training():
    task = ToyEcho()
    with pytest.raises(ValueError, match="missing parameter 'lr'"):
        tasks.run_trial(task, {"hidden": 4}, TINY)
    with pytest.raises(ValueError, match="unknown parameter"):
        tasks.run_trial(task, {"hidden": 4, "lr": 1e-2, "depth": 2}, TINY)


def test_the_analysed_state_follows_the_core_and_the_convention():
    class LSTMEcho(ToyEcho):
        name = "toy_lstm"

        def model(self, params, settings):
            return Echo(params["hidden"], "lstm")

    p = {"hidden": 7, "lr": 1e-2}
    assert LSTMEcho().spectrum_size(p, {"spectrum_state": "full"}) == 14  # (h, c)
    assert LSTMEcho().spectrum_size(p, {"spectrum_state": "hidden"}) == 7
    out = tasks.run_trial(LSTMEcho(), p, {**TINY, "epochs": 1, "spectrum_state": "full"},
                          callback=lambda r: None)
    assert out.reports[-1].spectrum.shape == (14,)


def test_a_model_without_one_recurrent_core_is_named():
    class Feedforward(ToyEcho):
        name = "toy_ff"

        def search_space(self):
            return {"hidden": IntDistribution(4, 8)}

        def model(self, params, settings):
            return nn.Sequential(nn.Flatten(), nn.Linear(10, 1))

    with pytest.raises(TypeError, match=r"exactly one torch RNN/LSTM/GRU .* found 0"):
        tasks.run_trial(Feedforward(), {"hidden": 4}, TINY)


def test_bad_data_is_named():
    from tasks import Data

    x = torch.zeros(4, 5, 1)
    with pytest.raises(ValueError, match=r"val_inputs must be a float tensor \(N, T, I\)"):
        Data(x, x[:, 0], torch.zeros(4, 5), x[:, 0])
    with pytest.raises(ValueError, match="train_targets must be a tensor with one target"):
        Data(x, x[:3, 0], x, x[:, 0])


def distribution(tmp_path, name, entry_points, module=""):
    """An installed distribution on sys.path: its metadata, entry points and module."""
    info = tmp_path / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[aelle.tasks]\n{lines}\n")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(module))


PLUGIN = """
    from tests.tasks.toy_plugin import ToyEcho

    class Good(ToyEcho):
        name = "good"

    class Unnamed(ToyEcho):
        name = "bad name!"

    class Unversioned(ToyEcho):
        name = "unversioned"
        version = 2

    NOT_A_TASK = 42
"""


def test_installed_entry_points_are_found_and_broken_ones_named(tmp_path, monkeypatch, caplog):
    distribution(tmp_path, "userplug", {
        "good": "userplug:Good", "other": "userplug:Good", "gone": "userplug_missing:Task",
        "bad-name": "userplug:Unnamed", "unversioned": "userplug:Unversioned",
        "smnist": "tasks.smnist:SMNIST", "notask": "userplug:NOT_A_TASK"}, PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_entry_points() == ["good"]
    assert tasks.get("good").version == "3"
    errors = caplog.text
    assert "task plugin other (userplug:Good) was not loaded: PluginError" in errors
    assert "its task is named 'good'" in errors
    assert "No module named 'userplug_missing'" in errors
    assert "the task's name must be 1-128 letters" in errors
    assert "version must be a non-empty string" in errors
    assert "a task named 'smnist' is already registered" in errors
    assert "is not a task" in errors
    with pytest.raises(KeyError, match="the installed plugin 'gone' failed to load: "
                                       "ModuleNotFoundError"):
        tasks.get("gone")
