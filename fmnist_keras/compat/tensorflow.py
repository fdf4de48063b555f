"""TensorFlow's private APIs, checked on TensorFlow 2.21."""

from __future__ import annotations

CHECKED_ON = "2.21"


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels: TensorFlow's own answer, read from the
    private `_pywrap_util_port.IsMklEnabled` (no public API says it)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
