"""A person's mistakes and interruptions end in one line that names the option or file and the fix,
with the exit code of its kind (2 usage, 1 unusable input, 130 interrupted), never a traceback."""

import logging
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from core import cli, runs, store
from core.inference import FitConfig
from core.runs import checkpoint_path
from core.synthetic import synthetic_run
from tests.conftest import ROOT

TRAIN = ["train", "--model", "mlp", "--prior", "normal"]


def tiny(mnist_dir, out, *more: str) -> list[str]:
    """A training run of a few seconds."""
    return [*TRAIN, "--sizes", "8", "--iterations", "30", "--batch-size", "50", "--checkpoint-every", "10",
            "--n-train", "500", "--n-test", "100", "--draws", "5", "--data-dir", str(mnist_dir), "--out", str(out),
            "--name", "r", "--no-progress", *more]


def usage_error(capsys, args: list[str]) -> str:
    """The error line of an argparse refusal (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    return err.strip().splitlines()[-1]


def error_line(capsys, args: list[str]) -> str:
    """The one line of a command that fails on its input (exit code 1)."""
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- Ctrl-C ---------------------------------------------------------------------------------------

HANG = """
import signal, sys, time
import core.{module} as module

def hang(*args, **kwargs):
    print("ready", flush=True)
    time.sleep(300)

module.{function} = hang
# Ctrl-C as in a terminal, even where this test runs in the background (whose children ignore SIGINT)
signal.signal(signal.SIGINT, signal.default_int_handler)
from core import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def interrupted(module: str, function: str, args: list[str]) -> tuple[int, str]:
    """Run ``bnn ARGS`` with core.MODULE.FUNCTION hanging, send SIGINT once it is reached (no guessed
    delay: the child says when), and return the exit code and stderr."""
    code = HANG.format(module=module, function=function)
    with subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as child:
        try:
            ready = child.stdout.readline()
            assert ready == "ready\n", child.communicate(timeout=60)[1]
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=60)
        finally:
            child.kill()
    return child.returncode, err


def test_ctrl_c_while_compiling(mnist_dir, tmp_path):
    code, err = interrupted("inference", "_compile", tiny(mnist_dir, tmp_path))
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("bnn train: interrupted; no run file was written; the same command with "
                                            "--resume continues from the last checkpoint, if any")
    assert not (tmp_path / "r.nc").exists()


def test_ctrl_c_while_evaluating(tmp_path):
    path = store.save_run(synthetic_run("mlp", "normal", n_digits=50), tmp_path / "run.nc")
    before = path.read_bytes()
    code, err = interrupted("predict", "sample_probabilities", ["evaluate", str(path)])
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"bnn evaluate: interrupted; {path} is unchanged"]
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["run.nc"]


def test_ctrl_c_while_starting(capsys, monkeypatch):
    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupt)  # where PyMC is imported, seconds
    assert cli.main(["list"]) == 130
    assert capsys.readouterr().err == "bnn: interrupted; nothing was done\n"


def test_ctrl_c_after_training_keeps_the_checkpoint_and_its_speed(mnist_dir, tmp_path, capsys, monkeypatch):
    """Interrupted while evaluating, a run's checkpoint holds every iteration; resuming it writes the run
    with the speed measured while training (not NaN), its compile time apart, and says which is which."""
    evaluate = runs.evaluate_predictions

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "evaluate_predictions", interrupt)
    assert cli.main(tiny(mnist_dir, tmp_path)) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("bnn train: interrupted; no run file was written")
    with np.load(checkpoint_path(tmp_path, "r")) as saved:
        assert len(saved["elbo"]) == 30
        speed, compile_s = float(saved["iterations_per_s"]), float(saved["compile_time_s"])
    monkeypatch.setattr(runs, "evaluate_predictions", evaluate)
    assert cli.main(tiny(mnist_dir, tmp_path, "--resume")) == 0
    attrs = store.load_run(tmp_path / "r.nc").attrs
    assert attrs["iterations_per_s"] == speed > 0 and attrs["compile_time_s"] == compile_s > 0
    assert attrs["wall_time_s"] < attrs["compile_time_s"], "30 steps of a tiny MLP take less than compiling it"
    assert f"{speed:.1f} it/s stepping, compile {compile_s:.0f} s" in capsys.readouterr().out


# --- options --------------------------------------------------------------------------------------

def test_out_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    """Refused by argparse, so before the data is read (the data folder here is empty) or anything compiled."""
    (tmp_path / "results.txt").write_text("")
    for out in ("results.txt", "results.txt/sub"):
        line = usage_error(capsys, [*TRAIN, "--data-dir", str(tmp_path), "--out", str(tmp_path / out)])
        assert line == (f"bnn train: error: argument --out: {tmp_path / 'results.txt'} is a file, not a folder; "
                        "give a folder for the run files (it is made if missing)")
    line = usage_error(capsys, ["sweep", "--out", str(tmp_path / "results.txt")])
    assert line.startswith("bnn sweep: error: argument --out:")
    # a folder that is not there yet is fine, and is not made before it is needed
    assert cli.build_parser().parse_args([*TRAIN, "--out", str(tmp_path / "new" / "runs")])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", [TRAIN, ["evaluate", "run.nc"]])
def test_negative_seed_names_the_option(capsys, command):
    line = usage_error(capsys, [*command, "--seed", "-1"])
    assert line == f"bnn {command[0]}: error: argument --seed: must be a non-negative integer, got '-1'"


@pytest.mark.parametrize("name", ["../x", "a/b", "/tmp/x", ".x", "..", ""])
def test_run_name_must_be_a_plain_file_name(capsys, name):
    line = usage_error(capsys, [*TRAIN, "--name", name])
    assert line.startswith(f"bnn train: error: argument --name: must be a plain file name (no '/', not empty, not "
                           f"starting with '.'), got {name!r}; the run is written to --out as NAME.nc")


def test_train_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    # one entry per option: its first line, and the help's continuation lines, joined
    entries = re.findall(r"^  (-.*(?:\n {20,}.*)*)", text.split("options:", 1)[1], flags=re.MULTILINE)
    helps = {entry.split()[0]: " ".join(entry.split()) for entry in entries}
    assert {"--model", "--iterations", "--seed", "--out", "--no-progress"} <= set(helps)
    for entry in helps.values():
        assert entry.count("default") <= 1 and "None" not in entry, entry
    assert "default" not in helps["--model"] and "default" not in helps["--prior"]  # required
    for field in ("iterations", "batch_size", "learning_rate", "seed", "checkpoint_every"):
        assert f"(default {getattr(FitConfig(), field)})" in helps["--" + field.replace("_", "-")]


def test_epilog_names_shipped_runs():
    named = re.findall(r"cached_traces/[\w.-]+\.nc", cli.EPILOG)
    assert named and all((ROOT / name).is_file() for name in named)


# --- files ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["show", "upgrade", "evaluate"])
def test_missing_file(tmp_path, capsys, command):
    path = tmp_path / "nope.nc"
    line = error_line(capsys, [command, str(path)])
    assert line == f"bnn {command}: error: {path}: not found; `bnn list FOLDER` lists the runs in a folder"


@pytest.mark.parametrize("command", ["show", "upgrade"])
def test_a_text_file_is_not_a_run_and_is_left_alone(tmp_path, capsys, command):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    line = error_line(capsys, [command, str(path)])
    assert line == (f"bnn {command}: error: notes.txt: not a run file (neither netCDF nor HDF5); "
                    "give a run file that `bnn train` wrote")
    assert path.read_text() == "hello"


def test_stale_temporaries_are_cleaned_by_list_and_train(tmp_path, capsys, caplog):
    """A write killed for good (kill -9) leaves its temporary file; the next list or train removes it
    once no write can be going on in it."""
    caplog.set_level(logging.INFO, logger="core.cli")
    store.save_run(synthetic_run("mlp", "normal", n_digits=50), tmp_path / "run.nc")
    old = time.time() - store.STALE_TEMP_S - 60
    for command in (["list", str(tmp_path)], [*TRAIN, "--out", str(tmp_path), "--data-dir", str(tmp_path / "none")]):
        stale, fresh = tmp_path / ".run.x1y2z3w4.tmp", tmp_path / ".run.a1b2c3d4.tmp"
        for path in (stale, fresh):
            path.write_bytes(b"")
        os.utime(stale, (old, old))
        cli.main(command)  # train then fails on the missing data: the cleaning came first
        assert not stale.exists() and fresh.exists()
        assert f"removed {stale}, left by a write that was killed" in caplog.text
        fresh.unlink()
    assert "run" in capsys.readouterr().out
