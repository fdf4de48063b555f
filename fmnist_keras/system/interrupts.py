"""Ctrl-C and SIGTERM as a KeyboardInterrupt that is never lost.

The library cleans up on KeyboardInterrupt (staging removed, a publish rolled
back), so every interrupt must reach it. Python loses one that fires while a
`__del__` runs: the exception is "unraisable", printed (to nowhere, while the
TFLite converter's stderr is silenced) and dropped. The converter calls
`gc.collect()`, so a Ctrl-C during a conversion was lost about one time in
twenty and the export went on to publish. `install` re-raises such an interrupt
as soon as normal code runs again.
"""

from __future__ import annotations

import _thread
import signal
import sys

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_default_unraisablehook = sys.unraisablehook


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _redeliver_lost_interrupt(unraisable) -> None:
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        # Handled here, the interrupt would be lost again (the hook too runs where exceptions are
        # dropped); another thread marks it pending for whatever the main thread runs next.
        _thread.start_new_thread(_thread.interrupt_main, (signal.SIGINT,))
    else:
        _default_unraisablehook(unraisable)


# What a Ctrl-C can surface as. TensorFlow's pybind11 layer, when the interrupt lands while it
# builds one of its own exceptions, raises RuntimeError("... REPLACED BY KeyboardInterrupt ...").
CAUGHT = (KeyboardInterrupt, RuntimeError)


def is_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C or SIGTERM, however the native code it interrupted reports it."""
    return isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, RuntimeError) and "REPLACED BY KeyboardInterrupt" in str(exc)
    )


def install() -> None:
    """SIGINT and SIGTERM (kill, a container stopping) raise KeyboardInterrupt, even where SIGINT
    was inherited as ignored (a background job of a script), and none is swallowed by a `__del__`."""
    for signum in _SIGNALS:
        signal.signal(signum, _raise_interrupt)
    sys.unraisablehook = _redeliver_lost_interrupt


def uninstall() -> None:
    """Back to the defaults once the command is done: a Ctrl-C while the interpreter shuts down
    ends the process quietly instead of printing a traceback from an exit handler."""
    sys.unraisablehook = _default_unraisablehook
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
