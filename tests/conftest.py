import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mnist_folder() -> Path:
    """The real MNIST files: $BNN_MNIST_DIR, else ../shared/data/mnist beside the repository."""
    return Path(os.environ.get("BNN_MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    folder = mnist_folder()
    if not (folder / "t10k-labels-idx1-ubyte.gz").exists():
        pytest.fail(f"MNIST files not found in {folder}; set BNN_MNIST_DIR to the folder holding them")
    return folder


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from core.data import load_mnist

    return load_mnist(mnist_dir)


@pytest.fixture
def run_folder(tmp_path):
    """A folder with a hierarchical MLP run and a fixed-prior CNN run, written by core.store."""
    from core import store
    from core.synthetic import synthetic_run

    store.save_run(synthetic_run("mlp", "hierarchical", seed=1), tmp_path / "mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", seed=2), tmp_path / "cnn-normal.nc")
    return tmp_path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The dashboard tests' folder of runs, unless a module defines its own: a hierarchical MLP run
    (``mlp-hier``), a fixed-prior CNN run (``cnn-normal``) and a truncated file."""
    from core import store
    from core.synthetic import synthetic_run

    path = tmp_path_factory.mktemp("runs")
    store.save_run(synthetic_run("mlp", "hierarchical", n_digits=120, seed=0), path / "mlp-hier.nc")
    store.save_run(synthetic_run("cnn", "normal", n_digits=120, seed=1), path / "cnn-normal.nc")
    (path / "truncated.nc").write_bytes(b"\x89HDF\r\n\x1a\n")
    return path


@pytest.fixture(scope="module")
def mlp(folder):
    """The ``mlp-hier`` run of ``folder``, loaded by the dashboard (a RunData)."""
    from dashboard import rundata

    return rundata.run_data(folder / "mlp-hier.nc")


@pytest.fixture(scope="module")
def cnn(folder):
    """The ``cnn-normal`` run of ``folder``, loaded by the dashboard (a RunData)."""
    from dashboard import rundata

    return rundata.run_data(folder / "cnn-normal.nc")
