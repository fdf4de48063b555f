"""TensorFlow Lite Micro's undocumented interfaces, checked on tflite-micro 0.dev20261023182759
(pinned in pyproject.toml; tests/compat/ fails loudly on a change)."""

from __future__ import annotations

# TFLite Micro is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import re

CHECKED_ON = "0.dev20261023182759"
_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def recording_interpreter(model_bytes: bytes, arena_size: int):
    """runtime.Interpreter.from_bytes with the allocation-recording allocator. The keyword is
    spelled `intrepreter_config` (sic) by tflite_micro itself."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(
        model_bytes, arena_size=arena_size, intrepreter_config=runtime.InterpreterConfig.kAllocationRecording
    )


def arena_total(printed_lines: list[str]) -> int | None:
    """The arena total in what `interpreter.print_allocations()` printed (its only report of it)."""
    for line in printed_lines:
        match = _ARENA_TOTAL.search(line)
        if match:
            return int(match.group(1))
    return None
