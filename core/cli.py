"""Command line: ``bnn train | evaluate | list | show`` (also ``python -m core``)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shlex
import sys

from . import store

DEFAULT_OUT = "cached_traces"

EPILOG = """\
examples:
  bnn train --model mlp --prior normal --iterations 2000 --data-dir ../shared/data/mnist
  bnn train --model cnn --prior hierarchical --preset blog        # the post's optimizer settings
  bnn train --model mlp --prior normal --iterations 20000 --resume   # continue after Ctrl-C
  bnn list                    # runs in cached_traces/
  bnn show cached_traces/mlp-normal-seed0.nc
MNIST is read from --data-dir, else $BNN_MNIST_DIR, else downloaded into ~/.cache/bnn-mnist.
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .inference import BACKENDS, OPTIMIZERS, PRESETS, SCHEDULES, STARTS, FitConfig

    defaults = FitConfig()
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
                           description="Train a network by mini-batch ADVI, evaluate it on the 10,000 test digits "
                           "and write one run file to --out.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = train.add_argument_group("model (what is fitted)")
    model.add_argument("--model", choices=("mlp", "cnn"), required=True, help="the post's 784-800-800-10 MLP or its CNN")
    model.add_argument("--prior", choices=("normal", "hierarchical", "mixture"), required=True,
                       help="Normal(0, sd) on every tensor; a HalfNormal hyperprior per tensor; or a scale mixture")
    model.add_argument("--prior-sd", type=_positive_float, default=0.1, help="sd of the normal prior")
    model.add_argument("--hyper-sd", type=_positive_float, default=1.0, help="sd of the hierarchical HalfNormal hyperpriors")
    model.add_argument("--mixture", type=float, nargs=3, metavar=("PI", "LOG_S1", "LOG_S2"), default=(0.5, 0.0, -6.0),
                       help="scale mixture pi N(0, e^LOG_S1) + (1 - pi) N(0, e^LOG_S2)")
    model.add_argument("--sizes", type=_positive_int, nargs="+", metavar="N",
                       help="layer widths: mlp hidden units (default 800 800); cnn filters, filters, dense (default 32 32 256)")
    fitting = train.add_argument_group("fitting (how it is fitted)")
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
    fitting.add_argument("--seed", type=int, help=f"seed of start values, mini-batches and noise (default {defaults.seed})")
    fitting.add_argument("--checkpoint-every", type=_positive_int, help=f"steps between checkpoints (default {defaults.checkpoint_every})")
    fitting.add_argument("--resume", action="store_true", help="continue from this run's checkpoint")
    io = train.add_argument_group("data and output")
    io.add_argument("--data-dir", help="folder with the four MNIST .gz files (else $BNN_MNIST_DIR, else download)")
    io.add_argument("--out", default=DEFAULT_OUT, help="folder for the run file")
    io.add_argument("--name", help="run name (default MODEL-PRIOR-seedSEED)")
    io.add_argument("--label", default="", help="free text shown in the app, e.g. the start tried")
    io.add_argument("--draws", type=_positive_int, default=100, help="posterior predictive draws for evaluation")
    io.add_argument("--n-train", type=_positive_int, help="use only the first N training images (quick tries)")
    io.add_argument("--n-test", type=_positive_int, help="evaluate only the first N test images (quick tries)")
    io.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = sub.add_parser("evaluate", help="recompute a run's test predictions from its stored approximation")
    evaluate.add_argument("run", help="run file")
    evaluate.add_argument("--draws", type=_positive_int, default=100, help="posterior predictive draws")
    evaluate.add_argument("--seed", type=int, default=0)

    listing = sub.add_parser("list", help="list the runs in a folder")
    listing.add_argument("folder", nargs="?", default=DEFAULT_OUT)

    show = sub.add_parser("show", help="print a run's attributes")
    show.add_argument("run", help="run file")

    upgrade = sub.add_parser("upgrade", help="bring run files of an older schema version to the current one")
    upgrade.add_argument("runs", nargs="+", metavar="RUN", help="run files, rewritten in place")
    return parser


def _config(args):
    from .inference import FitConfig, with_preset

    config = with_preset(FitConfig(), args.preset)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(FitConfig)
                 if getattr(args, f.name, None) is not None}
    return dataclasses.replace(config, **overrides)


def _prior_params(args) -> dict:
    if args.prior == "normal":
        return {"sd": args.prior_sd}
    if args.prior == "hierarchical":
        return {"hyper_sd": args.hyper_sd}
    pi, log_s1, log_s2 = args.mixture
    return {"pi": pi, "sigma1": math.exp(log_s1), "sigma2": math.exp(log_s2)}


def cmd_train(args) -> int:
    from .runs import train_run

    path = train_run(
        args.model, args.prior, _config(args), prior_params=_prior_params(args), sizes=args.sizes,
        data_dir=args.data_dir, out_dir=args.out, name=args.name, label=args.label, n_draws=args.draws,
        resume=args.resume, progress=not args.no_progress, n_train=args.n_train, n_test=args.n_test,
        command="bnn " + shlex.join(sys.argv[1:]),
    )
    if path is None:
        print("interrupted: the checkpoint is saved; run the same command with --resume to continue", file=sys.stderr)
        return 130
    run = store.load_run(path)
    print(f"{path}: accuracy {100 * run.attrs['accuracy_mode']:.2f}%, final ELBO {run.attrs['final_elbo']:,.0f}, "
          f"{run.attrs['iterations_per_s']:.1f} it/s")
    return 0


def cmd_evaluate(args) -> int:
    from .runs import evaluate_run

    path = evaluate_run(args.run, n_draws=args.draws, seed=args.seed)
    run = store.load_run(path)
    print(f"{path}: accuracy {100 * run.attrs['accuracy_mode']:.2f}% (mode of {args.draws} draws), "
          f"{100 * run.attrs['accuracy_mean']:.2f}% (mean probability), AUROC {run.attrs['auroc']:.3f}")
    return 0


def cmd_list(args) -> int:
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
        changed = store.upgrade_run(path)
        print(f"{path}: {'upgraded to' if changed else 'already at'} schema version {store.SCHEMA_VERSION}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)  # its backend probing is not news to a user
    from .data import DataError
    from .inference import CheckpointError, TrainingDiverged

    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "list": cmd_list, "show": cmd_show, "upgrade": cmd_upgrade}
    try:
        return commands[args.command](args)
    except (DataError, store.RunFileError, CheckpointError, TrainingDiverged) as exc:
        print(f"bnn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a bad combination of settings, e.g. cnn --sizes 32
        parser.error(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
