"""``aelle train``."""

import json

from aelle.cli import main


def test_train_prints_one_line_per_epoch_and_the_outcome(capsys):
    code = main(["train", "--task", "smnist", "--param", "arch=gru", "--param", "p_gru=0.4",
                 "--set", "epochs=1", "--set", "hidden=8", "--set", "train_size=128",
                 "--set", "spectrum_steps=16", "--set", "spectrum_sequences=2", "--json"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [x["epoch"] for x in lines[:-1]] == [0, 1]
    assert lines[-1]["state"] == "complete" and lines[-1]["params"] == {"arch": "gru",
                                                                        "p_gru": 0.4}


def test_train_draws_missing_params_and_reports_bad_settings(capsys):
    code = main(["train", "--task", "signal", "--set", "epochs=zero"])
    assert code == 2
    assert "setting epochs must be int, got 'zero'" in capsys.readouterr().err


def test_train_exit_code_marks_divergence(capsys):
    code = main(["train", "--task", "smnist", "--param", "arch=lipschitz",
                 "--param", "p_lipschitz=1e10", "--set", "epochs=1", "--set", "train_size=64"])
    assert code == 3
    assert "diverged" in capsys.readouterr().out
