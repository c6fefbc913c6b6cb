"""LoopTask: a training loop of the user's own, reporting through a callback, driven epoch by
epoch like any task; stopped inside its report when the trial is pruned."""

import threading

import pytest
import torch
from optuna.distributions import IntDistribution

import tasks
from tasks.loop import LoopTask, StopTraining
from tests.tasks.toy_plugin import Echo, ToyEcho

TINY = {"epochs": 3, "device": "cpu", "spectrum_sequences": 2, "spectrum_steps": 12,
        "spectrum_warmup": 2}


class EchoLoop(LoopTask):
    name = "echo_loop"

    def __init__(self, report_times=None):
        self.report_times = report_times
        self.events = []

    def search_space(self):
        return {"hidden": IntDistribution(4, 8)}

    def state_size(self, params, settings):
        return params["hidden"]

    def probe(self, params, settings, device):
        return ToyEcho().data(settings).val_inputs[:2].repeat(1, 2, 1).to(device)

    def fit(self, params, settings, seed, device, report):
        data = ToyEcho().data(settings)
        model = Echo(params["hidden"])
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)

        def val():
            with torch.no_grad():
                return float(((model(data.val_inputs) - data.val_targets) ** 2).mean())

        try:
            report(val(), model)
            for _ in range(self.report_times or settings.epochs):
                loss = ((model(data.train_inputs) - data.train_targets) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                report(val(), model, loss.item())
            self.events.append("returned")
        except StopTraining:
            self.events.append("stopped")
            raise


def test_a_loop_reports_every_epoch_with_its_spectrum_and_returns():
    task = EchoLoop()
    reports = []
    out = tasks.run_trial(task, {"hidden": 5}, TINY, callback=reports.append)
    assert out.state == "complete" and [r.epoch for r in reports] == [0, 1, 2, 3]
    assert all(r.spectrum.shape == (5,) for r in reports)
    assert reports[-1].value < reports[0].value and reports[1].train_loss is not None
    assert task.events == ["returned"]  # let go after its last report, not stopped
    again = tasks.run_trial(EchoLoop(), {"hidden": 5}, TINY)
    assert again.value == out.value


def test_a_pruned_loop_is_stopped_inside_its_report_and_its_thread_ends():
    task = EchoLoop()
    before = threading.active_count()
    out = tasks.run_trial(task, {"hidden": 5}, TINY, callback=lambda r: r.epoch < 1)
    assert out.state == "pruned" and out.epochs == 1
    assert task.events == ["stopped"] and threading.active_count() == before


def test_a_loop_that_reports_too_few_epochs_or_fails_is_named():
    with pytest.raises(RuntimeError, match="fit returned after 2 reports"):
        tasks.run_trial(EchoLoop(report_times=1), {"hidden": 5}, TINY)

    class Broken(EchoLoop):
        def fit(self, params, settings, seed, device, report):
            raise ValueError("no data here")

    with pytest.raises(ValueError, match="no data here"):
        tasks.run_trial(Broken(), {"hidden": 5}, TINY)


def test_a_loop_that_reports_more_epochs_is_stopped_after_the_last():
    task = EchoLoop(report_times=5)
    out = tasks.run_trial(task, {"hidden": 5}, TINY)
    assert out.state == "complete" and out.epochs == 3 and task.events == ["stopped"]
