"""The population recorder: seeded draws, the fixed tune/report split, compressed append-safe
storage that resumes by index, and the card (tiny SMNIST networks on the digits that ship)."""

import gzip
import json

import pytest

from bench import population as pop
from tasks.registry import get
from tasks.smnist import ARCHS

TINY = ["--set", "epochs=1", "--set", "hidden=8", "--set", "train_size=128",
        "--set", "val_size=64", "--set", "spectrum_sequences=2", "--set", "spectrum_steps=8",
        "--set", "spectrum_warmup=4", "--set", "device=cpu"]


def test_parameters_are_seeded_and_the_architectures_take_turns():
    task = get("smnist")
    a = [pop.params_for(task, i, seed=0) for i in range(16)]
    assert a == [pop.params_for(task, i, seed=0) for i in range(16)]
    assert [p["arch"] for p in a] == list(ARCHS) * 2
    assert a != [pop.params_for(task, i, seed=1) for i in range(16)]
    sizes = [pop.params_for(get("charrnn"), i, 0, {"hidden": [64, 128, 256]})["hidden"]
             for i in range(6)]
    assert sizes == [64, 128, 256] * 2


def test_parts_are_fixed_by_the_index_and_about_thirty_percent_report():
    parts = [pop.part_of("smnist", i) for i in range(4000)]
    assert parts == [pop.part_of("smnist", i) for i in range(4000)]
    assert set(parts) == {"tune", "report"}
    assert 0.27 < parts.count("report") / len(parts) < 0.33
    other = [pop.part_of("signal", i) for i in range(4000)]
    assert other != parts  # each task draws its own split


def test_records_compressed_resumes_by_index_and_writes_the_card(tmp_path):
    out = tmp_path / "population_smnist.jsonl.gz"
    assert pop.main(["smnist", "--networks", "2", "--out", str(out), *TINY]) == 0
    with gzip.open(out, "rt") as f:  # one gzip member per network, read as one stream
        rows = [json.loads(line) for line in f]
    assert [r["index"] for r in rows] == [0, 1]
    for r in rows:
        assert r["seed"] == r["index"] and r["part"] == pop.part_of("smnist", r["index"])
        assert [e["epoch"] for e in r["epochs"]] == [0, 1]
        assert all(len(e["spectrum"]) == 8 and e["probe_error"] is None for e in r["epochs"])
        assert r["spectrum_dtype"] == "float64" and r["machine"]["threads"] == 1
    first = out.read_bytes()

    # a kill tears the last member: the rerun drops it and trains that network again
    out.write_bytes(first + gzip.compress(b'{"index": 2, "torn": ')[:-9])
    assert [r["index"] for r in pop.read(out)] == [0, 1]
    assert pop.main(["smnist", "--networks", "3", "--out", str(out), *TINY]) == 0
    rows = pop.read(out)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert out.read_bytes().startswith(first)

    card = json.loads(pop.card_path(out).read_text())
    assert card["networks"] == 3 and card["task"] == "smnist"
    assert sum(card["parts"]["counts"].values()) == 3
    assert set(card["per_group"]["counts"]) == {"lstm", "gru", "rnn"}
    assert card["seconds_per_network"]["median"] > 0
    assert card["environment"][0]["threads"] == 1 and card["environment"][0]["networks"] == 3
    assert card["spectrum_state_per_network"] == {"hidden": 3}


def test_other_settings_need_another_file(tmp_path):
    out = tmp_path / "p.jsonl.gz"
    pop.main(["smnist", "--networks", "1", "--out", str(out), *TINY])
    with pytest.raises(SystemExit, match="other settings"):
        pop.main(["smnist", "--networks", "2", "--out", str(out), *TINY, "--set", "lr=0.01"])
