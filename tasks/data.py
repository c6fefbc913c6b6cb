"""Data sets that ship (scikit-learn's digits, CPython's reference-manual text) and loaders for
the real ones (MNIST IDX files, any UTF-8 text). Nothing is downloaded."""

from __future__ import annotations

import functools
import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Images:
    """Images as float32 in [0, 1], (n, rows, cols), with integer labels (n,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")

    def take(self, index: np.ndarray) -> Images:
        return Images(self.images[index], self.labels[index])


@functools.lru_cache(maxsize=2)
def digits() -> Images:
    """scikit-learn's 1,797 real 8x8 handwritten digits (values 0..16)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return Images((d.images / 16.0).astype(np.float32), d.target.astype(np.int64))


# ---- MNIST IDX ---------------------------------------------------------------------------------
_IDX_UBYTE = 0x08


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (raw or gzip) of unsigned bytes as an array of its declared shape."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: cannot be read as gzip ({e})") from None
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic "
                        f"{data[:4].hex()}, expected 000008 followed by the dimension count)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: header truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(f"{path}: header declares shape {shape} ({expected} bytes) but the "
                        f"file holds {len(data) - header} bytes of data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _idx_pair(directory: Path, split: str) -> Path | None:
    for name in (f"{split}-images-idx3-ubyte", f"{split}-images.idx3-ubyte"):
        for suffix in ("", ".gz"):
            p = directory / (name + suffix)
            if p.is_file():
                return p
    return None


def mnist(directory: str | Path) -> dict[str, Images]:
    """The MNIST halves found in ``directory``: {"train": ..., "test": ...} (either may be
    absent, not both). Images must be (n, rows, cols), labels (n,) in 0..9."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory")
    out = {}
    for split in ("train", "t10k"):
        images_path = _idx_pair(directory, split)
        if images_path is None:
            continue
        labels_path = Path(str(images_path).replace("images-idx3", "labels-idx1")
                           .replace("images.idx3", "labels.idx1"))
        if not labels_path.is_file():
            raise DataError(f"{images_path} has no labels file beside it ({labels_path.name})")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3:
            raise DataError(f"{images_path}: images must have 3 dimensions, got {images.ndim}")
        if labels.ndim != 1:
            raise DataError(f"{labels_path}: labels must have 1 dimension, got {labels.ndim}")
        if len(images) != len(labels):
            raise DataError(f"{images_path.name} holds {len(images)} images but "
                            f"{labels_path.name} {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise DataError(f"{labels_path}: labels must be digits 0..9, found {labels.max()}")
        out["train" if split == "train" else "test"] = Images(
            images.astype(np.float32) / 255.0, labels.astype(np.int64))
    if not out:
        raise DataError(f"{directory}: no MNIST IDX files (expected train-images-idx3-ubyte or "
                        "t10k-images-idx3-ubyte, optionally .gz, with their labels)")
    return out


# ---- text ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def reference_manual() -> str:
    """The Python reference-manual text that ships with CPython (pydoc_data.topics)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def read_text(path: str | Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
