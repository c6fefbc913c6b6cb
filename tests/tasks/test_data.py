"""The IDX and text loaders on small files written here, well-formed and malformed."""

import gzip
import struct

import numpy as np
import pytest

from tasks import DataError, run_trial
from tasks.data import digits, mnist, read_idx, read_text, reference_manual
from tests.tasks.conftest import TINY


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                      *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(tmp_path, n=60, split="t10k", gz=True, rows=6):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, rows, rows))
    labels = rng.integers(0, 10, size=n)
    for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
        name = f"{split}-{kind}-ubyte" + (".gz" if gz else "")
        data = idx_bytes(arr)
        (tmp_path / name).write_bytes(gzip.compress(data) if gz else data)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip_raw_and_gzip(tmp_path, gz):
    images, labels = write_mnist(tmp_path, gz=gz)
    found = mnist(tmp_path)
    assert set(found) == {"test"}
    np.testing.assert_allclose(found["test"].images, images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(found["test"].labels, labels)


def test_idx_errors_name_the_problem(tmp_path):
    p = tmp_path / "x-idx"
    p.write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="not an IDX file of unsigned bytes"):
        read_idx(p)
    p.write_bytes(idx_bytes(np.zeros((4, 3, 3)))[:-5])
    with pytest.raises(DataError, match=r"declares shape \(4, 3, 3\) \(36 bytes\) but the file "
                                        "holds 31"):
        read_idx(p)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(p)
    p.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(DataError, match="cannot be read as gzip"):
        read_idx(p)
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "absent")


def test_mnist_directory_errors(tmp_path):
    with pytest.raises(DataError, match="no MNIST IDX files"):
        mnist(tmp_path)
    with pytest.raises(DataError, match="no such directory"):
        mnist(tmp_path / "nowhere")
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="has no labels file"):
        mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(7))))
    with pytest.raises(DataError, match=r"60 images but t10k-labels-idx1-ubyte\.gz 7 labels"):
        mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.full(60, 12))))
    with pytest.raises(DataError, match="labels must be digits"):
        mnist(tmp_path)


def test_smnist_trains_on_idx_files(tmp_path):
    write_mnist(tmp_path, n=80, rows=6)
    settings = {**TINY["smnist"], "data_dir": str(tmp_path), "train_size": None,
                "val_size": None, "spectrum_sequences": 2, "spectrum_steps": 12,
                "spectrum_warmup": 6}
    out = run_trial("smnist", {"arch": "gru", "p_gru": 0.5}, settings, seed=0)
    assert out.state == "complete" and out.reports[-1].spectrum.shape == (16,)


def test_smnist_with_a_bad_data_dir_says_so(tmp_path):
    with pytest.raises(DataError, match="no MNIST IDX files"):
        run_trial("smnist", {"arch": "gru", "p_gru": 0.5},
                  {**TINY["smnist"], "data_dir": str(tmp_path)})


def test_shipped_data_sets():
    d = digits()
    assert d.images.shape == (1797, 8, 8) and d.images.max() <= 1.0
    assert len(reference_manual()) > 100_000


def test_text_loader(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("héllo wörld " * 400, encoding="utf-8")
    assert read_text(p).startswith("héllo")
    p.write_bytes(b"abc\xff\xfe def")
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_text(p)
    with pytest.raises(DataError, match="no such file"):
        read_text(tmp_path / "absent.txt")


def test_charrnn_on_a_text_file(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("the quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    settings = {**TINY["charrnn"], "text_path": str(p), "max_chars": None}
    out = run_trial("charrnn", {"hidden": 8, "p": 0.1, "lr": 1e-2, "dropout": 0.0}, settings)
    assert out.state == "complete"
    p.write_text("too short", encoding="utf-8")
    with pytest.raises(DataError, match="at least 5 are needed"):
        run_trial("charrnn", {"hidden": 8, "p": 0.1, "lr": 1e-2, "dropout": 0.0},
                  {**settings, "seq_len": 60})
