"""Full-accuracy benchmark: the default `fmnist train`, once per seed, on the real data.

Each seed trains with every default from fmnist_keras.config (only --seed and
--output change) in a fresh process, exactly as a user would run it, and the
script prints test accuracy and wall time per seed plus mean and spread.

    python tools/bench_accuracy.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", type=Path, help="keep each run's folder under this path")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="fmnist-bench-"))
    results = []
    print(f"{'seed':>4}  {'test acc':>8}  {'best val':>8}  {'epochs':>6}  {'wall s':>7}  command")
    for seed in args.seeds:
        out = root / f"seed{seed}"
        command = ["fmnist", "train", "--seed", str(seed), "--output", str(out), "--overwrite"]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fmnist_keras", *command[1:]], check=True, capture_output=True)
        wall = time.perf_counter() - started  # includes interpreter and TensorFlow start-up
        metrics = json.loads((out / "metrics.json").read_text())
        results.append(metrics["test_accuracy"])
        print(
            f"{seed:>4}  {metrics['test_accuracy']:>8.2%}  {metrics['best_val_accuracy']:>8.2%}  "
            f"{metrics['epochs_run']:>6}  {wall:>7.0f}  {' '.join(command)}",
            flush=True,
        )
    spread = statistics.stdev(results) if len(results) > 1 else 0.0
    print(f"mean {statistics.mean(results):.2%}  min {min(results):.2%}  max {max(results):.2%}  std {spread:.2%}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
