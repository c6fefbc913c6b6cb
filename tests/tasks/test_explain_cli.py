"""``aelle explain``: a network trained here, or loaded from its state dict, gives the report."""

import json

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
