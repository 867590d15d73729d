import gzip
import struct

import numpy as np
import pytest

from core import data
from core.data import DataError, load_mnist, read_idx


def write_idx(path, array: np.ndarray, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(payload)


def test_read_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "x.gz", images)
    write_idx(tmp_path / "y", np.arange(7, dtype=np.uint8), compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), np.arange(7))


def test_truncated_idx_names_file(tmp_path):
    images = np.zeros((5, 28, 28), np.uint8)
    write_idx(tmp_path / "x", images, compress=False)
    raw = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(raw[:-100])
    with pytest.raises(DataError, match=r"x: holds .* truncated"):
        read_idx(tmp_path / "x")


def test_truncated_gzip_is_clear(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((50, 28, 28), np.uint8))
    raw = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "x.gz")


def test_bad_magic(tmp_path):
    (tmp_path / "x").write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "x")


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: missing.*--data-dir"):
        load_mnist(tmp_path)


def test_bad_checksum(tmp_path):
    for name, _ in data.FILES.values():
        write_idx(tmp_path / name, np.zeros((3, 28, 28) if "images" in name else (3,), np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: MD5 is [0-9a-f]+, expected f68b3c2d"):
        load_mnist(tmp_path)


def test_environment_variable_names_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.resolve_data_dir() == (tmp_path, False)
    monkeypatch.delenv(data.DATA_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.resolve_data_dir() == (tmp_path / "cache" / "bnn-mnist" / "mnist", True)


def test_download_failure_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))
    with pytest.raises(DataError, match="could not download train-images-idx3-ubyte.gz"):
        load_mnist()
    assert not any(p.name.startswith("tmp") for p in (tmp_path / "bnn-mnist" / "mnist").iterdir())


def test_real_mnist_split(mnist):
    assert mnist.x_train.shape == (50_000, 28, 28) and mnist.x_val.shape == (10_000, 28, 28)
    assert mnist.x_test.shape == (10_000, 28, 28) and mnist.x_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(mnist.y_test), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    scaled = mnist.scale(mnist.x_test[:10])
    assert scaled.dtype == np.float32 and scaled.max() == np.float32(255 / 256)
