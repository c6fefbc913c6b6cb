"""``aelle explain``: a network trained here, or loaded from its state dict, gives the report."""

import json

import pytest

from aelle.cli import main
from tests.tasks.conftest import TINY

SETS = [x for k, v in TINY["sysid"].items() if k != "epochs" for x in ("--set", f"{k}={v}")]
PARAMS = '{"arch": "lstm", "p": 0.3, "lr": 0.01}'


def test_train_then_load_the_same_network(tmp_path, capsys):
    weights = tmp_path / "net.pt"
    code = main(["explain", "--task", "sysid", "--params", PARAMS, "--train", *SETS,
                 "--set", "epochs=1", "--out", str(tmp_path / "a"), "--quiet",
                 "--save-state-dict", str(weights)])
    assert code == 0, capsys.readouterr().err
    a = json.loads((tmp_path / "a" / "explain.json").read_text())
    assert (tmp_path / "a" / "explain.html").read_text().startswith("<!doctype html>")
    assert len(a["true_poles"]["re"]) == 4 and a["true_poles"]["distance"] > 0
    code = main(["explain", "--task", "sysid", "--params", PARAMS, "--state-dict", str(weights),
                 *SETS, "--out", str(tmp_path / "b"), "--quiet"])
    assert code == 0
    b = json.loads((tmp_path / "b" / "explain.json").read_text())
    assert a["linearisation"] == b["linearisation"]
    assert a["meta"]["validation loss"] == b["meta"]["validation loss"]


def test_bad_inputs_are_named(tmp_path, capsys):
    assert main(["explain", "--task", "sysid", "--params", PARAMS, "--state-dict",
                 str(tmp_path / "missing.pt"), *SETS, "--quiet"]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a state dict")
    assert main(["explain", "--task", "sysid", "--params", PARAMS, "--state-dict", str(junk),
                 *SETS, "--quiet"]) == 2
    assert "cannot read the state dict" in capsys.readouterr().err
    assert main(["explain", "--task", "sysid", "--params", '{"arch": "lem"}', "--train",
                 *SETS, "--quiet"]) == 2
    assert "unknown arch 'lem'" in capsys.readouterr().err


def _run(task_name, params):
    import torch

    from tasks import get
    task = get(task_name)
    settings = task.resolve(params, {**TINY[task_name], "device": "cpu"})
    run = task.build(params, settings, 0, torch.device("cpu"))
    run.train_epoch()
    return run


def test_ablation_is_in_the_task_loss_where_the_network_reads_the_validation_inputs():
    from aelle.explain import ablate, network_of
    from tasks.explain_cli import validation_loss

    run = _run("smnist", {"arch": "lstm", "p_lstm": 0.3})
    net = network_of(run.model)
    loss = validation_loss(run, net)
    assert abs(loss(net) - run.validate()) < 1e-5 * run.validate()
    assert loss(ablate(net, range(net.hidden_size))) != loss(net)


def test_an_embedding_in_front_of_the_cell_has_no_task_loss_for_ablation():
    from aelle.explain import network_of
    from tasks.explain_cli import validation_loss

    run = _run("charrnn", {"hidden": 16, "p": 0.2, "lr": 0.002, "dropout": 0.0})
    assert validation_loss(run, network_of(run.model, run.model.decoder)) is None


def test_a_report_ablates_in_the_task_loss():
    import torch

    from tasks.explain_cli import explain_run

    sysid = _run("sysid", {"arch": "lstm", "p": 0.3, "lr": 0.01})
    torch.manual_seed(0)
    exp = explain_run("sysid", {"arch": "lstm"}, sysid, progress=False)
    assert exp.ablation.loss == "validation loss of the task"
    assert exp.ablation.baseline == pytest.approx(sysid.validate(), rel=1e-5)
