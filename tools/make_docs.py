"""Regenerate the README's pictures from the run in export/ (after `make demo`).

    python tools/make_docs.py [--run export] [--docs docs]

Writes docs/training_curves.png (from training_log.csv) and
docs/evaluation_confusion.png (via `fmnist evaluate` on the test set).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

from fmnist_keras.system.figures import plot_training_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("export"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    args = parser.parse_args()
    log = args.run / "training_log.csv"
    if not log.is_file():
        sys.exit(f"error: {log} does not exist; run `fmnist train` (or `make demo`) first")
    args.docs.mkdir(exist_ok=True)
    with log.open() as f:
        plot_training_curves(list(csv.DictReader(f)), args.docs / "training_curves.png")
    # fmnist evaluate prints its own one-line error; pass on its exit code, not a traceback.
    evaluate = [sys.executable, "-m", "fmnist_keras", "evaluate", str(args.run / "model.keras"),
                "--output", str(args.docs / "evaluation.json")]  # fmt: skip
    if (code := subprocess.run(evaluate).returncode) != 0:
        sys.exit(code)
    print(f"wrote {args.docs / 'training_curves.png'} and {args.docs / 'evaluation_confusion.png'}")


if __name__ == "__main__":
    main()
