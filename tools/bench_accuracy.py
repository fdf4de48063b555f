"""Full-accuracy benchmark: the default `fmnist train`, once per seed, against the article's time budget.

Each seed trains with every default from fmnist_keras.config (only --seed and
--output change) in a fresh process, exactly as a user would run it, and the
script prints test accuracy and wall time per seed plus mean and spread. On the
same machine, the article's PyTorch loop trains 20 epochs at batch 64 on all
60,000 images (tools/torch_reference.py, in its own process): its wall time is
the budget a default run must fit in. A shared VM's speed drifts by more than
an epoch's worth within an hour, so the budget is timed twice, before the first
seed and after the last, and each seed is held against the shorter of the two.
Without PyTorch (`make bench` installs the `bench` extra's version) the budget
line says so. --precision float32 runs what `--precision auto` picks on CPUs
without AMX, on a CPU with AMX.

    python tools/bench_accuracy.py --seeds 0 1 2 [--precision float32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tool_support import add_precision_option, machine_line, run_child, seed_number

from fmnist_keras.config import TrainConfig
from fmnist_keras.system.versions import installed_version

TOOLS = Path(__file__).parent


def _timed(command: list[str], what: str) -> float:
    """Wall seconds of a fresh process, interpreter and framework start-up included."""
    started = time.perf_counter()
    run_child(command, what)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_number, nargs="+", default=[0, 1, 2])
    parser.add_argument("--keep", type=Path, help="keep each run's folder under this path")
    add_precision_option(parser)
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="fmnist-bench-"))
    try:
        _bench(root, args.seeds, args.precision)
    finally:  # a failed run exits with one line; its temporary folders go too
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


def _bench(root: Path, seeds: list[int], precision: str) -> None:
    print(machine_line())
    budgets = [_time_budget()]
    results, walls = [], []
    print(f"{'seed':>4}  {'test acc':>8}  {'best val':>8}  {'epochs':>6}  {'wall s':>7}  command")
    for seed in seeds:
        out = root / f"seed{seed}"
        command = ["fmnist", "train", "--seed", str(seed), "--output", str(out), "--overwrite"]
        if precision != TrainConfig().precision:
            command += ["--precision", precision]
        wall = _timed([sys.executable, "-m", "fmnist_keras", *command[1:]], " ".join(command[:4]))
        walls.append(wall)
        metrics = json.loads((out / "metrics.json").read_text())
        results.append(metrics["test_accuracy"])
        print(
            f"{seed:>4}  {metrics['test_accuracy']:>8.2%}  {metrics['best_val_accuracy']:>8.2%}  "
            f"{metrics['epochs_run']:>6}  {wall:>7.0f}  {' '.join(command)}",
            flush=True,
        )
    spread = statistics.stdev(results) if len(results) > 1 else 0.0
    print(f"mean {statistics.mean(results):.2%}  min {min(results):.2%}  max {max(results):.2%}  std {spread:.2%}")
    budgets.append(_time_budget())
    _print_budget(max(walls), budgets)


def _time_budget() -> float | None:
    """Wall seconds of the article's PyTorch loop, 20 epochs at batch 64; None without PyTorch."""
    if not installed_version("torch"):
        return None
    command = [sys.executable, str(TOOLS / "torch_reference.py"), "--epochs", "20", "--batch-size", "64"]
    budget = _timed(command, "the article's PyTorch loop")
    print(f"budget: the article's PyTorch loop, 20 epochs at batch 64 on 60,000 images, took {budget:.0f} s",
          flush=True)  # fmt: skip
    return budget


def _print_budget(slowest: float, budgets: list[float | None]) -> None:
    if None in budgets:
        print("budget: PyTorch is not installed (make bench installs it), so the article's 20 epochs were not timed")
        return
    budget = min(budgets)
    verdict = "fits" if slowest <= budget else "does NOT fit"
    print(f"budget: {budget:.0f} s, the shorter of the PyTorch runs before and after the seeds "
          f"({budgets[0]:.0f} s, {budgets[1]:.0f} s); "
          f"the slowest default run took {slowest:.0f} s ({slowest / budget:.0%}): {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
