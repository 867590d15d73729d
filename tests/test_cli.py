import subprocess
import sys

import pytest

from core import cli, store
from tests.conftest import ROOT


def bnn(*args):
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          check=False)


def test_help_explains_commands():
    out = bnn("--help")
    assert out.returncode == 0
    for command in ("train", "evaluate", "list", "show", "upgrade", "sweep"):
        assert command in out.stdout
    assert "examples:" in out.stdout
    assert "--preset" in bnn("train", "--help").stdout


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "mlp", "--prior", "normal", "--iterations", "-5"], "must be a positive integer"),
    (["train", "--model", "rnn", "--prior", "normal"], "invalid choice: 'rnn'"),
    (["train", "--model", "mlp"], "the following arguments are required: --prior"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_usage_not_traceback(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "usage: bnn" in err and "Traceback" not in err


def test_bad_sizes_give_usage(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--model", "cnn", "--prior", "normal", "--sizes", "3", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    code = cli.main(["train", "--model", "mlp", "--prior", "normal", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "bnn train: error:" in err and "train-images-idx3-ubyte.gz: missing" in err


def test_list_and_show(run_folder, capsys):
    (run_folder / "broken.nc").write_text("no")
    assert cli.main(["list", str(run_folder)]) == 0
    out = capsys.readouterr().out
    assert "mlp-hier" in out and "hierarchical" in out and "broken" in out and "unusable" in out
    assert cli.main(["show", str(run_folder / "mlp-hier.nc")]) == 0
    out = capsys.readouterr().out
    assert "schema_version" in out and "architecture" in out
    assert cli.main(["show", str(run_folder / "broken.nc")]) == 1
    assert "broken.nc: not a run file (neither netCDF nor HDF5)" in capsys.readouterr().err


def test_list_empty_folder_says_how_to_train(tmp_path, capsys):
    cli.main(["list", str(tmp_path)])
    assert "bnn train" in capsys.readouterr().out


def test_evaluate_recomputes_predictions(run_folder, capsys):
    assert cli.main(["evaluate", str(run_folder / "mlp-hier.nc"), "--draws", "30"]) == 0
    run = store.load_run(run_folder / "mlp-hier.nc")
    assert run["predictions"].sizes["draw"] == 30 and run.attrs["n_draws"] == 30
    assert "accuracy" in capsys.readouterr().out
