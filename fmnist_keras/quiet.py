"""Silence native (C++) log lines that bypass Python's logging.

TensorFlow prints start-up notes before absl logging is initialised (so
TF_CPP_MIN_LOG_LEVEL cannot hide them), the converter prints its settings,
and LiteRT announces XNNPACK. None of it is for the user; Python exceptions
raised inside are re-raised after stderr is restored, so errors still show.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    with native_stderr_silenced():
        import tensorflow  # noqa: F401
