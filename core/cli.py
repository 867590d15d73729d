"""Command line: ``bnn train | evaluate | list | show | upgrade | sweep`` (also ``python -m core``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shlex
import sys
import time
from pathlib import Path

from . import heap, store

log = logging.getLogger(__name__)

DEFAULT_OUT = "cached_traces"

EPILOG = """\
examples:
  bnn train --model mlp --prior normal --iterations 2000 --data-dir ../shared/data/mnist
  bnn train --model cnn --prior hierarchical --preset blog        # the post's optimizer settings
  bnn train --model cnn --prior normal --method ensemble --members 5   # a deep ensemble of MAP fits
  bnn train --model mlp --prior normal --iterations 20000 --resume   # continue after Ctrl-C
  bnn list                    # runs in cached_traces/
  bnn show cached_traces/mlp-normal.nc
  bnn sweep --iterations 400 --pi 0.25     # choose the scale mixture's sds on validation accuracy
MNIST is read from --data-dir, else $BNN_MNIST_DIR, else downloaded into ~/.cache/bnn-mnist.
"""

# what an interrupted command leaves behind, and how to go on
AFTER_INTERRUPT = {
    "train": "no run file was written; the same command with --resume continues from the last checkpoint, if any",
    "evaluate": "{run} is unchanged",
    "upgrade": "the files not yet upgraded are unchanged; the same command upgrades the rest",
    "sweep": "the grid points trained so far keep their run files; the same command trains the others",
}


def _integer(text: str, least: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < least:
        raise argparse.ArgumentTypeError(f"must be a {what} integer, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, "positive")


def _non_negative_int(text: str) -> int:
    return _integer(text, 0, "non-negative")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _run_name(text: str) -> str:
    """A run's name becomes the file ``--out/NAME.nc``: a path or a hidden name would put it where neither
    ``bnn list`` nor the app looks."""
    if not text or text.startswith(".") or "/" in text or os.sep in text:
        raise argparse.ArgumentTypeError(
            f"must be a plain file name (no '/', not empty, not starting with '.'), got {text!r}; "
            "the run is written to --out as NAME.nc"
        )
    return text


def _out_folder(text: str) -> str:
    """A folder that exists or can be made, and may be written in: checked before the data is read or
    anything compiled, since a run that cannot be written is only found out after training."""
    path = Path(text)
    existing = next(p for p in (path, *path.parents) if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder; give a folder for the run files "
                                         "(it is made if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write in {existing}; give a folder you may write in")
    return text


def build_parser() -> argparse.ArgumentParser:
    from .inference import BACKENDS, OPTIMIZERS, PRESETS, SCHEDULES, STARTS, FitConfig
    from .priors import HierarchicalPrior, NormalPrior, ScaleMixturePrior
    from .sweep import BLUNDELL_LOG_S1, BLUNDELL_LOG_S2, BLUNDELL_PIS

    # Each help names its default once. Those of the fitting and prior options are FitConfig's and the
    # priors' (an option left out takes them, so argparse's default is None: not shown); the others argparse's.
    defaults, mixture = FitConfig(), ScaleMixturePrior()
    parser = argparse.ArgumentParser(
        prog="bnn",
        description="Train Bayesian neural networks on MNIST with mini-batch ADVI (PyMC) and manage the run files "
        "that the dashboard browses.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a network and write its run file",
                           description="Train a network by mini-batch ADVI (or its MAP fit, or a deep ensemble of MAP fits), evaluate it on the 10,000 test digits "
                           "and write one run file to --out.")
    model = train.add_argument_group("model (what is fitted)")
    model.add_argument("--model", choices=("mlp", "cnn"), required=True, help="the post's 784-800-800-10 MLP or its CNN")
    model.add_argument("--prior", choices=("normal", "hierarchical", "mixture"), required=True,
                       help="Normal(0, sd) on every tensor; a HalfNormal hyperprior per tensor; or a scale mixture")
    model.add_argument("--prior-sd", type=_positive_float, help=f"sd of the normal prior (default {NormalPrior.sd})")
    model.add_argument("--hyper-sd", type=_positive_float,
                       help=f"sd of the hierarchical HalfNormal hyperpriors (default {HierarchicalPrior.hyper_sd})")
    model.add_argument("--mixture", type=float, nargs=3, metavar=("PI", "LOG_S1", "LOG_S2"),
                       help="scale mixture pi N(0, e^LOG_S1) + (1 - pi) N(0, e^LOG_S2) (default "
                       f"{mixture.pi:g} {math.log(mixture.sigma1):g} {math.log(mixture.sigma2):g})")
    model.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N",
                       help="layer widths: mlp hidden units, or cnn filters, filters and dense units "
                       "(default 800 800 for mlp, 32 32 256 for cnn)")
    fitting = train.add_argument_group("fitting (how it is fitted)")
    fitting.add_argument("--method", dest="run_method", choices=("advi", "map", "ensemble"), default="advi",
                         help="advi: a mean-field posterior; map: the posterior's mode, one network (the prior as "
                         "a penalty); ensemble: --members MAP fits from seeds SEED, SEED+1... (default %(default)s)")
    fitting.add_argument("--members", type=_positive_int,
                         help="--method ensemble: its networks (default 5)")
    fitting.add_argument("--scheduler", help="--method ensemble: train the members on the Dask cluster at this "
                         "address (default: one after another here, or on --workers local processes)")
    fitting.add_argument("--workers", type=_positive_int, default=1,
                         help="--method ensemble: local Dask worker processes (default %(default)s: no Dask)")
    fitting.add_argument("--preset", choices=sorted(PRESETS), help="the post's settings (windowed Adagrad, lr 0.01, "
                         "eps 1.0, N(0, 1) start, float64, 50,000 iterations); flags below override it")
    fitting.add_argument("--iterations", type=_positive_int, help=f"ADVI steps (default {defaults.iterations})")
    fitting.add_argument("--batch-size", type=_positive_int, help=f"mini-batch size (default {defaults.batch_size})")
    fitting.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {defaults.optimizer})")
    fitting.add_argument("--learning-rate", type=_positive_float, help=f"peak step size (default {defaults.learning_rate})")
    fitting.add_argument("--lr-schedule", choices=SCHEDULES, help=f"(default {defaults.lr_schedule})")
    fitting.add_argument("--lr-floor", type=float, metavar="FRACTION",
                         help=f"cosine: where the decay ends, a fraction of the peak (default {defaults.lr_floor})")
    fitting.add_argument("--lr-hold", type=float, metavar="FRACTION",
                         help=f"cosine: the last fraction of iterations held at the floor (default {defaults.lr_hold})")
    fitting.add_argument("--start", choices=STARTS, help=f"start of the variational means (default {defaults.start})")
    fitting.add_argument("--start-sigma", type=_positive_float, help=f"start of the variational sds (default {defaults.start_sigma})")
    fitting.add_argument("--backend", choices=tuple(BACKENDS), help=f"compile backend; falls back if unavailable (default {defaults.backend})")
    fitting.add_argument("--float", choices=("float32", "float64"), help=f"(default {defaults.float})")
    fitting.add_argument("--seed", type=_non_negative_int,
                         help=f"seed of start values, mini-batches and noise (default {defaults.seed})")
    fitting.add_argument("--checkpoint-every", type=_positive_int, help=f"steps between checkpoints (default {defaults.checkpoint_every})")
    fitting.add_argument("--resume", action="store_true", help="continue from this run's checkpoint")
    io = train.add_argument_group("data and output")
    io.add_argument("--data-dir", help="folder with the four MNIST .gz files (else $BNN_MNIST_DIR, else download)")
    io.add_argument("--out", type=_out_folder, default=DEFAULT_OUT, help="folder for the run file (default %(default)s)")
    io.add_argument("--name", type=_run_name, help="run name, the file's name without .nc (default MODEL-PRIOR-seedSEED)")
    io.add_argument("--label", default="", help="free text shown in the app, e.g. the start tried")
    io.add_argument("--draws", type=_positive_int, default=100,
                    help="posterior predictive draws for evaluation (default %(default)s; a MAP fit or an "
                    "ensemble has its networks instead)")
    io.add_argument("--n-train", type=_positive_int, help="use only the first N training images (quick tries)")
    io.add_argument("--n-test", type=_positive_int, help="evaluate only the first N test images (quick tries)")
    io.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = sub.add_parser("evaluate", help="recompute a run's test predictions from its stored approximation")
    evaluate.add_argument("run", help="run file")
    evaluate.add_argument("--draws", type=_positive_int, default=100, help="posterior predictive draws (default %(default)s)")
    evaluate.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the draws (default %(default)s)")

    listing = sub.add_parser("list", help="list the runs in a folder")
    listing.add_argument("folder", nargs="?", default=DEFAULT_OUT, help="(default %(default)s)")

    show = sub.add_parser("show", help="print a run's attributes")
    show.add_argument("run", help="run file")

    upgrade = sub.add_parser("upgrade", help="bring run files of an older schema version to the current one")
    upgrade.add_argument("runs", nargs="+", metavar="RUN", help="run files, rewritten in place")

    sweep = sub.add_parser("sweep", help="choose the scale-mixture prior's parameters on a grid, by validation accuracy",
                           description="Train the scale-mixture prior at every (pi, sigma1, sigma2) of a grid on Dask "
                           "and rank the points by validation accuracy (held-out training images, never the test set). "
                           "Points already trained in --out are kept; OUT/summary.json ranks every point there.")
    sweep.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="(default %(default)s)")
    sweep.add_argument("--iterations", type=_positive_int, default=3000, help="ADVI steps per grid point (default %(default)s)")
    sweep.add_argument("--data-dir", help="folder with the four MNIST .gz files (else $BNN_MNIST_DIR, else download)")
    sweep.add_argument("--out", type=_out_folder, default="sweeps/mixture", help="folder for the grid's runs (default %(default)s)")
    sweep.add_argument("--scheduler", help="address of a Dask scheduler (default: a LocalCluster on this machine)")
    sweep.add_argument("--workers", type=_positive_int, default=1, help="LocalCluster workers (default %(default)s)")
    sweep.add_argument("--draws", type=_positive_int, default=100,
                       help="posterior predictive draws per evaluation (default %(default)s)")
    sweep.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N", help="layer widths, as for bnn train")
    sweep.add_argument("--n-train", type=_positive_int, help="use only the first N training images (quick tries)")
    sweep.add_argument("--n-test", type=_positive_int, help="evaluate only the first N images (quick tries)")
    grid = sweep.add_argument_group("grid (default Blundell et al.'s 27 points; give fewer values to search part of it)")
    grid.add_argument("--pi", type=float, nargs="+", default=BLUNDELL_PIS,
                      help=f"mixture weights of the wide component (default {' '.join(map(str, BLUNDELL_PIS))})")
    grid.add_argument("--log-s1", type=float, nargs="+", default=BLUNDELL_LOG_S1,
                      help=f"log sd of the wide component (default {' '.join(map(str, BLUNDELL_LOG_S1))})")
    grid.add_argument("--log-s2", type=float, nargs="+", default=BLUNDELL_LOG_S2,
                      help=f"log sd of the narrow component (default {' '.join(map(str, BLUNDELL_LOG_S2))})")
    return parser


def _config(args):
    from .inference import FitConfig, with_preset

    config = with_preset(FitConfig(), args.preset)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(FitConfig)
                 if getattr(args, f.name, None) is not None}
    return dataclasses.replace(config, **overrides)


def _prior_params(args) -> dict:
    """The prior's parameters given on the command line; the others keep the prior's defaults."""
    if args.prior == "normal":
        given = {"sd": args.prior_sd}
    elif args.prior == "hierarchical":
        given = {"hyper_sd": args.hyper_sd}
    elif args.mixture:
        pi, log_s1, log_s2 = args.mixture
        given = {"pi": pi, "sigma1": math.exp(log_s1), "sigma2": math.exp(log_s2)}
    else:
        given = {}
    return {k: v for k, v in given.items() if v is not None}


def _remove_stale_temporaries(folder: str) -> None:
    for path in store.remove_stale_temporaries(folder):
        log.info("removed %s, left by a write that was killed", path)


def cmd_train(args) -> int:
    from .runs import train_run

    _remove_stale_temporaries(args.out)
    ensemble = args.run_method == "ensemble"
    if not ensemble and (args.members or args.scheduler or args.workers > 1):
        raise ValueError("--members, --scheduler and --workers go with --method ensemble")
    if args.scheduler or args.workers > 1:
        _quiet_dask(args)
    config = dataclasses.replace(_config(args), method="advi" if args.run_method == "advi" else "map")
    path = train_run(
        args.model, args.prior, config, prior_params=_prior_params(args), sizes=args.sizes,
        members=(args.members or 5) if ensemble else None, scheduler=args.scheduler, workers=args.workers,
        data_dir=args.data_dir, out_dir=args.out, name=args.name, label=args.label, n_draws=args.draws,
        resume=args.resume, progress=not args.no_progress, n_train=args.n_train, n_test=args.n_test,
        command="bnn " + shlex.join(sys.argv[1:]),
    )
    if path is None:
        print("bnn train: interrupted; the checkpoint is saved: the same command with --resume continues",
              file=sys.stderr)
        return 130
    attrs = store.load_run(path).attrs
    # the speed is that of stepping alone: the progress bar's, not counting the compile before it
    timing = f"{attrs['iterations_per_s']:.1f} it/s stepping"
    if math.isfinite(attrs.get("compile_time_s", math.nan)):
        timing += f", compile {attrs['compile_time_s']:.0f} s"
    objective = "ELBO" if attrs.get("method", "advi") == "advi" else "log posterior"
    print(f"{path}: accuracy {100 * attrs['accuracy_mode']:.2f}%, final {objective} {attrs['final_elbo']:,.0f}, {timing}")
    return 0


def cmd_evaluate(args) -> int:
    from .runs import evaluate_run

    path = evaluate_run(args.run, n_draws=args.draws, seed=args.seed)
    run = store.load_run(path)
    print(f"{path}: accuracy {100 * run.attrs['accuracy_mode']:.2f}% (mode of {args.draws} draws), "
          f"{100 * run.attrs['accuracy_mean']:.2f}% (mean probability), AUROC {run.attrs['auroc']:.3f}")
    return 0


def cmd_list(args) -> int:
    _remove_stale_temporaries(args.folder)
    runs = store.list_runs(args.folder)
    if not runs:
        print(f"no runs in {args.folder}; train one with: bnn train --model mlp --prior normal --out {args.folder}")
        return 0
    header = f"{'run':32} {'model':5} {'prior':12} {'iterations':>10} {'accuracy':>8} {'created':25}"
    print(header)
    for r in runs:
        if r.error:
            print(f"{r.name:32} unusable: {r.error}")
        else:
            print(f"{r.name:32} {r.model:5} {r.prior:12} {r.iterations:>10,} {100 * r.accuracy:>7.2f}% {r.created:25}")
    return 0


def cmd_show(args) -> int:
    run = store.load_run(args.run)
    for key, value in store.run_attrs(run).items():
        print(f"{key:20} {value}")
    return 0


def cmd_upgrade(args) -> int:
    for path in args.runs:
        started = time.perf_counter()

        def progress(done: int, total: int, name: str, path=path, started=started) -> None:
            elapsed = time.perf_counter() - started
            log.info("%s: shift suite %d/%d, %s (%.0f s, about %.0f s to go)", path, done, total, name, elapsed,
                     elapsed / done * (total - done))

        changed = store.upgrade_run(path, progress)
        print(f"{path}: {'upgraded to' if changed else 'already at'} schema version {store.SCHEMA_VERSION}")
    return 0


def _quiet_dask(args) -> None:
    if not args.verbose:
        # dask logs the start and stop of its scheduler, nannies and connections at INFO, a screenful per
        # cluster. Its import sets its loggers' levels (the worker processes' are LocalCluster's, WARNING).
        import distributed  # noqa: F401

        logging.getLogger("distributed").setLevel(logging.WARNING)


def cmd_sweep(args) -> int:
    _quiet_dask(args)
    from .inference import FitConfig
    from .sweep import folder_summary, mixture_grid, run_sweep

    out = Path(args.out)
    results = run_sweep(args.model, mixture_grid(args.pi, args.log_s1, args.log_s2), FitConfig(iterations=args.iterations),
                        args.data_dir, out, args.scheduler, args.workers, n_draws=args.draws, sizes=args.sizes,
                        n_train=args.n_train, n_test=args.n_test)
    log.info("trained %d grid points", len(results))
    summary = folder_summary(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for r in summary:
        print(f"{r['name']:45} validation {100 * r['val_accuracy']:6.2f}%   ELBO {r['final_elbo']:12,.0f}")
    return 0


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)  # its backend probing is not news to a user
    from .data import DataError
    from .inference import CheckpointError, TrainingDiverged

    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "list": cmd_list, "show": cmd_show, "upgrade": cmd_upgrade,
                "sweep": cmd_sweep}
    try:
        return commands[args.command](args)
    except (DataError, store.RunFileError, CheckpointError, TrainingDiverged) as exc:
        print(f"bnn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a bad combination of settings, e.g. cnn --sizes 32
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    heap.keep_large_allocations()  # before any thread allocates: see core.heap
    args = None
    try:
        parser = build_parser()  # imports PyMC: seconds in which a Ctrl-C is likely too
        args = parser.parse_args(argv)
        return _run(parser, args)
    except KeyboardInterrupt:  # Ctrl-C: a person's decision, not a fault (the training loop handles its own)
        if args is None:
            print("bnn: interrupted; nothing was done", file=sys.stderr)
        else:
            after = AFTER_INTERRUPT.get(args.command, "nothing was changed").format_map(vars(args))
            print(f"bnn {args.command}: interrupted; {after}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
