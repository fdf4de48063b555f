"""The one place that decides whether TensorFlow runs its oneDNN kernels.

TensorFlow turns them on by default only on CPUs with AVX512_VNNI, AVX512_BF16 or AMX; on
every other x86-64 CPU (AVX2 laptops, Zen 2/3, AVX-512 without VNNI) it leaves them off
unless TF_ENABLE_ONEDNN_OPTS=1 is set before it is imported. With them on, our float32
training step took 17.5-18.9 s per epoch instead of 32.6 s on an AVX2-only Zen 3
(docs/benchmarks.md), so fmnist turns them on on every x86-64 CPU. A value the user set
wins. `fmnist_keras/__init__.py` calls `choose()` before any module can import TensorFlow.

Imports nothing heavy: it runs on every `fmnist` start.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping

from fmnist_keras.compat.tensorflow import onednn_enabled

SWITCH = "TF_ENABLE_ONEDNN_OPTS"
# Set beside SWITCH when fmnist chose its value, so that a child process (a benchmark's
# `fmnist train`) still says fmnist chose it, not the user.
_OURS = "FMNIST_ONEDNN_CHOSEN"
_X86_64 = {"x86_64", "amd64"}

# Who decided, as `fmnist info`, metrics.json and the model card say it.
BY_USER = "TF_ENABLE_ONEDNN_OPTS={value} set by you"
BY_FMNIST = "turned on by fmnist on this x86-64 CPU"
TOO_LATE = "TensorFlow's default: TensorFlow was imported before fmnist_keras"
NOT_X86 = "TensorFlow's default on this {machine} CPU"


def choose(environ: MutableMapping[str, str] = os.environ, machine: str | None = None,
           tensorflow_imported: bool | None = None) -> str:  # fmt: skip
    """Turn oneDNN on (x86-64, user silent, TensorFlow not yet imported); return who decided."""
    machine = (machine or platform.machine()).lower()
    if tensorflow_imported is None:
        tensorflow_imported = "tensorflow" in sys.modules
    value = environ.get(SWITCH)
    if value is not None and environ.get(_OURS) != value:
        return BY_USER.format(value=value)
    if value is not None:
        return BY_FMNIST
    if tensorflow_imported:
        return TOO_LATE
    if machine not in _X86_64:
        return NOT_X86.format(machine=machine)
    environ[SWITCH] = environ[_OURS] = "1"
    return BY_FMNIST


DECIDED_BY = choose()


def enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (TensorFlow's own answer)."""
    return onednn_enabled()


def state() -> dict:
    """For metrics.json, reports and benchmarks: {"enabled": bool, "decided_by": str}."""
    return {"enabled": enabled(), "decided_by": DECIDED_BY}


def describe(recorded: dict | None = None) -> str:
    """One line: "oneDNN on (turned on by fmnist on this x86-64 CPU)", for this process or for a
    `state()` recorded in metrics.json or report.json."""
    recorded = recorded or state()
    return f"oneDNN {'on' if recorded['enabled'] else 'off'} ({recorded['decided_by']})"
