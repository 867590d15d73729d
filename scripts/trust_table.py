"""Print the calibration and shift figures of run files as Markdown tables (docs/trust.md holds them).

    python scripts/trust_table.py cached_traces/*.nc
    python scripts/trust_table.py --by-method cached_traces/*.nc

Per run: accuracy, ECE (15 bins), NLL and Brier of the mean predictive on the 10,000 clean test
digits; accuracy, ECE and mean predictive entropy of the rotated test subset at 0, 45, 90 and 180
degrees; the AUROC of entropy and of mutual information for telling each foreign set from clean
digits (a dash where a run does not define the measure: one network has no mutual information).

``--by-method``: one table per network (model) instead, a row per run, ADVI against MAP against
the ensemble: accuracy, NLL, ECE, Brier, the best measure's AUROC for telling errors from correct
digits, mean entropy at 0, 45 and 90 degrees, the entropy's AUROC for the letters and the UCI
digits, and the training time. Everything is read from the files: nothing is predicted here.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import calibration, store

ANGLES = (0, 45, 90, 180)
FOREIGN = ("uci", "typed", "letters")


def rows(path: Path) -> tuple[list[str], list[str], list[str]]:
    run = store.load_run(path)
    predictions, constant = run["predictions"], run["predictions_constant_data"]
    clean = calibration.calibration_summary(predictions["probability"].values, constant["true_label"].values)
    shift = run["shift"].to_dataset()
    name = path.stem
    direction = "over" if clean["overconfidence"] > 0 else "under"
    first = [name, f"{100 * clean['accuracy']:.2f}%", f"{clean['ece']:.4f}", f"{clean['nll']:.3f}",
             f"{clean['brier']:.4f}", f"{100 * clean['overconfidence']:+.2f} pp ({direction})"]
    rotated = [name]
    for angle in ANGLES:
        row = shift.sel(set=f"rotation {angle}")
        rotated.append(f"{100 * float(row.accuracy):.1f}% / {float(row.ece):.3f} / "
                       f"{float(row.measure_mean.sel(measure='entropy')):.2f}")
    foreign = [name] + [
        f"{_number(shift.auroc_shift.sel(set=s, separating='entropy'))} / "
        f"{_number(shift.auroc_shift.sel(set=s, separating='mutual_information'))}"
        for s in FOREIGN
    ]
    return first, rotated, foreign


def _number(value, fmt: str = ".3f") -> str:
    value = float(value)
    return "–" if math.isnan(value) else format(value, fmt)


def method_row(path: Path) -> tuple[str, list[str]]:
    """(model, the row of ``--by-method``) of one run."""
    run = store.load_run(path)
    attrs = store.run_attrs(run, defaults=True)
    clean = calibration.calibration_summary(run["predictions"]["probability"].values,
                                            run["predictions_constant_data"]["true_label"].values)
    shift = run["shift"].to_dataset()
    errors = run["uncertainty"].to_dataset()
    best = max(errors.data_vars, key=lambda m: errors[m].attrs["auroc"])
    entropy = [_number(shift.measure_mean.sel(set=f"rotation {a}", measure="entropy"), ".2f") for a in (0, 45, 90)]
    method = attrs["method"] + (f" ({attrs['members']})" if attrs["method"] == "ensemble" else "")
    hours, minutes = divmod(round(attrs["wall_time_s"] / 60), 60)
    return attrs["model"], [
        path.stem, method, f"{100 * clean['accuracy']:.2f}%", f"{clean['nll']:.3f}", f"{clean['ece']:.4f}",
        f"{clean['brier']:.4f}", f"{errors[best].attrs['auroc']:.3f} ({best.replace('_', ' ')})", " / ".join(entropy),
        *(_number(shift.auroc_shift.sel(set=s, separating="entropy")) for s in ("letters", "uci")),
        f"{hours} h {minutes:02d}" if hours else f"{minutes} min",
    ]


def table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run files")
    parser.add_argument("--by-method", action="store_true", help="one table per network: ADVI, MAP, ensemble")
    args = parser.parse_args(argv)
    if args.by_method:
        by_model: dict[str, list[list[str]]] = {}
        for path in args.runs:
            model, row = method_row(path)
            by_model.setdefault(model, []).append(row)
        for model, body in by_model.items():
            print(f"{model}:\n")
            print(table(["run", "method", "accuracy", "NLL", "ECE", "Brier", "AUROC of errors (best measure)",
                         "entropy at 0° / 45° / 90°", "AUROC letters", "AUROC UCI", "training time"], body))
            print()
        return 0
    results = [rows(p) for p in args.runs]
    print(table(["run", "accuracy", "ECE", "NLL", "Brier", "confidence - accuracy"], [r[0] for r in results]))
    print()
    print(table(["run"] + [f"{a}°: acc. / ECE / entropy" for a in ANGLES], [r[1] for r in results]))
    print()
    print(table(["run"] + [f"{s}: AUROC entropy / MI" for s in FOREIGN], [r[2] for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
