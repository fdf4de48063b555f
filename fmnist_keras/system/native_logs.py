"""Silence native (C++) log lines that bypass Python's logging.

TensorFlow prints start-up notes before absl logging is initialised (so
TF_CPP_MIN_LOG_LEVEL cannot hide them), the converter prints its settings,
and LiteRT announces XNNPACK. None of it is for the user; Python exceptions
raised inside are re-raised after stderr is restored, so errors still show.
"""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def _native_stderr_to(fd: int) -> Iterator[None]:
    """File descriptor 2 (where C code writes) points at `fd` inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with _native_stderr_to(devnull):
            yield
    finally:
        os.close(devnull)


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[list[str]]:
    """The lines C code writes to stderr inside the block, in the yielded list once it ends."""
    lines: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as capture:
        try:
            with _native_stderr_to(capture.fileno()):
                yield lines
        finally:
            capture.seek(0)
            lines.extend(capture.read().splitlines())


def import_tensorflow_quietly() -> None:
    with native_stderr_silenced():
        import tensorflow  # noqa: F401
