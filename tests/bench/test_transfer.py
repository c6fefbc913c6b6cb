"""The transfer splits of bench.transfer on small synthetic populations: sources and targets
disjoint, sources from the tune part, targets from the report part, and a run end to end."""

import gzip
import json

import optuna

from bench import anytime as at
from bench import transfer as tr
from tests.bench.test_anytime import EPOCHS, rows


def charrnn_rows(n: int = 24) -> list[dict]:
    out = []
    for i in range(n):
        q = (i * 7 % n) / n
        epochs = [{"epoch": e, "value": 2.0 + q + 1.0 / (e + 1), "seconds": 1.0,
                   "spectrum_seconds": 0.2, "spectrum": [0.05 - (0.1 + q) * k for k in range(8)]}
                  for e in range(EPOCHS + 1)]
        out.append({"index": i, "state": "complete", "part": "report" if i % 2 else "tune",
                    "params": {"hidden": (64, 128, 256, 512)[i % 4], "p": 0.1, "lr": 1e-3,
                               "dropout": 0.1}, "settings": {}, "seconds": 5.0,
                    "epochs": epochs})
    return out


def populations(tmp_path):
    """Small SMNIST and CharRNN population files, and where a run writes."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sm, ch = tmp_path / "sm.jsonl.gz", tmp_path / "ch.jsonl"
    with gzip.open(sm, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows(64))
    ch.write_text("".join(json.dumps(r) + "\n" for r in charrnn_rows()))
    return sm, ch, tmp_path / "out"


def test_the_splits_keep_evaluated_networks_out_of_the_training_sets():
    pops = {"smnist": at.prepare("smnist", rows(64)), "charrnn": at.prepare("charrnn",
                                                                            charrnn_rows())}
    found = tr.splits(pops)
    names = [s.name for s in found]
    assert "charrnn:64,128->256,512" in names and "charrnn:256,512->64,128" in names
    assert "smnist->charrnn" in names and sum(n.startswith("smnist:") for n in names) == 8
    for s in found:
        src = {(n.task, n.index) for n in s.source}
        dst = {(n.task, n.index) for n in s.target}
        assert src and dst and not src & dst
        assert {n.part for n in s.source} == {"tune"} and {n.part for n in s.target} == {
            "report"}
        if s.name.startswith("smnist:"):
            arch = s.name.split(":")[1]
            assert {n.params["arch"] for n in s.target} == {arch}
            assert arch not in {n.params["arch"] for n in s.source}
        assert s.calibrate == ("->" in s.name and not s.name.startswith("charrnn"))


def test_a_transfer_run_writes_its_report(tmp_path):
    sm, ch, out = populations(tmp_path)
    assert tr.main(["--seeds", "2", "--splits", "smnist:gru,smnist->charrnn", "--tasks",
                    "smnist,charrnn", "--smnist", str(sm), "--charrnn", str(ch), "--out",
                    str(out)]) == 0
    result = json.loads((out / "transfer.json").read_text())
    assert [s["name"] for s in result["splits"]] == ["smnist:gru", "smnist->charrnn"]
    gru = result["splits"][0]
    assert set(gru["rules"]) == set(tr.RULES)
    assert all(r["seeds"] == 2 for r in gru["rules"].values())
    targets = {i for s in result["splits"] for i in s["target_networks"]}
    sources = {tuple(x) for s in result["splits"] for x in s["source_networks"]}
    assert not {("smnist", i) for i in result["splits"][0]["target_networks"]} & sources
    assert targets and (out / "transfer.png").stat().st_size > 0
    assert "python -m bench.transfer --seeds 2" in (out / "transfer.md").read_text()


def test_joint_rules_are_left_out_of_cross_task_splits_and_the_report_says_so(tmp_path):
    sm, ch, out = populations(tmp_path)
    assert tr.main(["--seeds", "2", "--splits", "smnist:gru,smnist->charrnn", "--tasks",
                    "smnist,charrnn", "--smnist", str(sm), "--charrnn", str(ch), "--rules",
                    "joint_curve", "--out", str(out)]) == 0
    result = json.loads((out / "transfer.json").read_text())
    by_name = {s["name"]: s for s in result["splits"]}
    assert set(by_name["smnist:gru"]["rules"]) == {"joint_curve"}
    assert by_name["smnist->charrnn"]["rules"] == {}   # losses in other units: no joint cut
    assert "No rule asked for applies here" in (out / "transfer.md").read_text()
