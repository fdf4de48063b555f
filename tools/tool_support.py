"""What every benchmark script shares: argument types, options and running a child process.

A benchmark runs `fmnist` or a worker in a fresh process; when that child fails,
the script prints one line with the child's own last line (its `error:` line)
and exits non-zero, instead of a CalledProcessError traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def run_child(command: list[str], what: str) -> subprocess.CompletedProcess:
    """Run `command`, capturing its output; on failure exit with one line naming `what` failed and why."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        sys.exit(f"error: {what} failed (exit {done.returncode}): {lines[-1].removeprefix('error: ')}")
    return done


def machine_line() -> str:
    """The CPU and whether TensorFlow's oneDNN kernels run, as a child process (same environment
    as the benchmark's own children) reports it: what every timing was measured on."""
    from fmnist_keras.system.cpu import cpu_description

    code = "from fmnist_keras.system import onednn; print(onednn.describe())"
    done = run_child([sys.executable, "-c", code], "asking TensorFlow whether oneDNN runs")
    # oneDNN (TensorFlow's and PyTorch's) obeys this limit: how a faster CPU stands in for an older one.
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    limit = f", limited to {isa} by ONEDNN_MAX_CPU_ISA" if isa else ""
    return f"{cpu_description()}; TensorFlow's {done.stdout.strip().splitlines()[-1]}{limit}"


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (batch sizes, epochs)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed_number(text: str) -> int:
    """argparse type: a seed fmnist train accepts (0 .. 2**32 - 1)."""
    from fmnist_keras.config import MAX_SEED

    value = _whole_number(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {value}")
    return value


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """--precision, as `fmnist train` takes it, with the same default."""
    from fmnist_keras.config import TrainConfig
    from fmnist_keras.training.precision import Precision

    parser.add_argument("--precision", choices=[p.value for p in Precision], default=TrainConfig().precision,
                        help="as fmnist train's --precision (default: its default)")  # fmt: skip


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
