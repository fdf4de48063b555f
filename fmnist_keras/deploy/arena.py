"""What an int8 model costs a microcontroller: flash, the TensorFlow Lite Micro tensor
arena (measured on the TFLM interpreter, not estimated) and multiply-accumulates per layer.

The arena is measured twice: TFLM's RecordingMicroAllocator reports what it
allocated, and a bisection finds the smallest `arena_size` that allocates and runs.
The published figure is the recorded total plus ARENA_MARGIN, rounded up to
ARENA_ALIGN; the TFLM verification runs with exactly that arena. TFLM's persistent
structures hold pointers, so on this 64-bit host they are larger than on a 32-bit
MCU: the figure is an upper bound there.
"""

from __future__ import annotations

import math

import numpy as np

from fmnist_keras.compat.tflite_micro import arena_total
from fmnist_keras.runtimes.backends import micro_interpreter
from fmnist_keras.system.native_logs import native_stderr_captured, native_stderr_silenced

# Headroom over the recorded arena for another TFLM version's alignment and bookkeeping.
ARENA_MARGIN = 0.10
ARENA_ALIGN = 1024
_PROBE_ARENA = 512 * 1024  # far more than this model needs; the recording says how much it used
_BISECT_STEP = 16  # TFLM aligns its allocations to 16 bytes


def runs_with_arena(model_bytes: bytes, arena_size: int) -> bool:
    """Whether TFLM allocates the model in `arena_size` bytes and runs one (blank) image."""
    with native_stderr_silenced():  # TFLM explains each failed allocation on stderr
        try:
            interpreter = micro_interpreter(model_bytes, arena_size)
            detail = interpreter.get_input_details(0)
            interpreter.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
            interpreter.invoke()
        except RuntimeError:
            return False
    return True


def recorded_arena(model_bytes: bytes) -> int:
    """The arena TFLM's RecordingMicroAllocator reports after allocating and running the model."""
    interpreter = micro_interpreter(model_bytes, _PROBE_ARENA)
    detail = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(detail["shape"], dtype=detail["dtype"]), 0)
    interpreter.invoke()
    with native_stderr_captured() as lines:
        interpreter.print_allocations()
    total = arena_total(lines)
    if total is not None:
        return total
    raise RuntimeError("TFLite Micro printed no arena total: " + " | ".join(lines[:3]))


def smallest_arena(model_bytes: bytes, upper: int = _PROBE_ARENA) -> int:
    """The smallest arena (to 16 bytes) in which the model allocates and runs, by bisection."""
    low, high = 0, upper
    if not runs_with_arena(model_bytes, high):
        raise RuntimeError(f"the model does not run on TFLite Micro even with a {high:,}-byte arena")
    while high - low > _BISECT_STEP:
        middle = (low + high) // 2
        if runs_with_arena(model_bytes, middle):
            high = middle
        else:
            low = middle
    return high


def published_arena(recorded: int) -> int:
    return math.ceil(recorded * (1 + ARENA_MARGIN) / ARENA_ALIGN) * ARENA_ALIGN


def device_budget(model_bytes: bytes, macs_per_layer: dict[str, int], ops: list[str]) -> dict:
    """Flash, measured arena and MACs of one int8 .tflite, as report.json records them."""
    recorded = recorded_arena(model_bytes)
    return {
        "flash_bytes": len(model_bytes),
        "arena_bytes": published_arena(recorded),
        "arena_recorded_bytes": recorded,
        "arena_smallest_bytes": smallest_arena(model_bytes),
        "arena_method": (
            f"TFLite Micro RecordingMicroAllocator total on an x86-64 host, +{ARENA_MARGIN:.0%} rounded up to "
            f"{ARENA_ALIGN} bytes; the smallest arena that runs was found by bisection. An upper bound for a "
            "32-bit MCU, whose persistent TFLM structures are smaller"
        ),
        "macs_per_layer": dict(macs_per_layer),
        "macs_total": sum(macs_per_layer.values()),
        "ops": sorted(set(ops)),
    }
