"""Print the calibration and shift figures of run files as Markdown tables (docs/trust.md holds them).

    python scripts/trust_table.py cached_traces/*.nc

Per run: accuracy, ECE (15 bins), NLL and Brier of the mean predictive on the 10,000 clean test
digits; accuracy, ECE and mean predictive entropy of the rotated test subset at 0, 45, 90 and 180
degrees; the AUROC of entropy and of mutual information for telling each foreign set from clean
digits. Everything is read from the files: nothing is predicted here.
"""

from __future__ import annotations

import argparse
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
        f"{float(shift.auroc_shift.sel(set=s, separating='entropy')):.3f} / "
        f"{float(shift.auroc_shift.sel(set=s, separating='mutual_information')):.3f}"
        for s in FOREIGN
    ]
    return first, rotated, foreign


def table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run files")
    args = parser.parse_args(argv)
    results = [rows(p) for p in args.runs]
    print(table(["run", "accuracy", "ECE", "NLL", "Brier", "confidence - accuracy"], [r[0] for r in results]))
    print()
    print(table(["run"] + [f"{a}°: acc. / ECE / entropy" for a in ANGLES], [r[1] for r in results]))
    print()
    print(table(["run"] + [f"{s}: AUROC entropy / MI" for s in FOREIGN], [r[2] for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
