"""MNIST from the four original idx files: download, verify, parse, split.

The split follows the post (Lasagne's tutorial loader): the last 10,000 of the 60,000 training
images are held out for validation, so the model sees 50,000; the 10,000 test images are kept apart.
Pixels are scaled as in the post, ``uint8 / 256`` (range [0, 255/256]).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DATA_ENV", "FILES", "MNIST", "DataError", "load_mnist", "read_idx", "resolve_data_dir"]

DATA_ENV = "BNN_MNIST_DIR"
"""Environment variable naming a folder that holds the four MNIST files."""

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}

N_VALIDATION = 10_000
_IDX_DTYPES = {0x08: np.uint8}


class DataError(RuntimeError):
    """A data file is missing, truncated or fails its checksum."""


@dataclass(frozen=True)
class MNIST:
    """The post's split, as uint8 images and int8 labels.

    x_* : (n, 28, 28) uint8   y_* : (n,) int8   with n = 50,000 / 10,000 / 10,000
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @staticmethod
    def scale(images: np.ndarray) -> np.ndarray:
        """uint8 images -> float32 in [0, 255/256], as the post's loader did."""
        return images.astype(np.float32) / np.float32(256.0)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bnn-mnist" / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """The folder to read MNIST from, and whether files may be downloaded into it.

    Order: the ``data_dir`` argument, then ``$BNN_MNIST_DIR``, then the user cache folder. Only the
    cache folder is written to: a folder the user names is taken as it is.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser(), False
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser(), False
    return default_cache_dir(), True


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(name: str, target: Path) -> None:
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in MIRRORS:
        url = mirror + name
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with (tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
                      tqdm(total=total, unit="B", unit_scale=True, desc=name) as bar):
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        tmp.write(chunk)
                        bar.update(len(chunk))
            os.replace(tmp.name, target)
            return
        except OSError as exc:  # URLError is an OSError
            errors.append(f"{url}: {exc}")
            if "tmp" in locals() and os.path.exists(tmp.name):
                os.unlink(tmp.name)
    raise DataError(
        f"could not download {name}:\n  " + "\n  ".join(errors) + f"\nDownload it by hand into "
        f"{target.parent}, or point --data-dir / ${DATA_ENV} at a folder that holds the MNIST files."
    )


def _checked_file(key: str, folder: Path, may_download: bool) -> Path:
    name, md5 = FILES[key]
    path = folder / name
    if not path.exists():
        if not may_download:
            raise DataError(
                f"{path}: missing. The folder must hold the four original MNIST files "
                f"({', '.join(n for n, _ in FILES.values())}); give another folder with --data-dir "
                f"or ${DATA_ENV}, or leave both unset to download into {default_cache_dir()}."
            )
        _download(name, path)
    actual = md5sum(path)
    if actual != md5:
        raise DataError(
            f"{path}: MD5 is {actual}, expected {md5}; the file is damaged or not the original. "
            f"Delete it and download it again."
        )
    return path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one idx file (gzip or plain) into an array of the shape its header gives."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); the file is truncated or corrupt.") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an idx file of unsigned bytes (bad magic number).")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(
            f"{path}: holds {len(data) - header} bytes of data, the header promises {expected} "
            f"(shape {shape}); the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(data_dir: str | os.PathLike | None = None) -> MNIST:
    """Load MNIST with the post's 50,000 / 10,000 / 10,000 split, verifying every file's MD5.

    Raises
    ------
    DataError
        A file is missing (and cannot be downloaded), fails its checksum, or is truncated.
    """
    folder, may_download = resolve_data_dir(data_dir)
    arrays = {key: read_idx(_checked_file(key, folder, may_download)) for key in FILES}
    x, y = arrays["train_images"], arrays["train_labels"].astype(np.int8)
    if len(x) != len(y):
        raise DataError(f"{folder}: {len(x)} training images but {len(y)} labels.")
    n_train = len(x) - N_VALIDATION
    return MNIST(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train:],
        y_val=y[n_train:],
        x_test=arrays["test_images"],
        y_test=arrays["test_labels"].astype(np.int8),
    )
