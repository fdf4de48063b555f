"""`fmnist info`: what model, which libraries, which devices, which data."""

from __future__ import annotations

import io
from pathlib import Path

from fmnist_keras import versions
from fmnist_keras.errors import FmnistError


def describe(data_dir: Path | None = None) -> str:
    import tensorflow as tf

    from fmnist_keras.data import find_data_dir
    from fmnist_keras.model import build_model

    out = io.StringIO()
    model = build_model()
    model.summary(print_fn=lambda line, **_: out.write(line + "\n"))
    out.write("\nVersions\n")
    for name, version in versions.library_versions().items():
        out.write(f"  {name:<16} {version or 'not installed'}\n")
    out.write("\nDevices TensorFlow sees\n")
    for device in tf.config.list_physical_devices():
        out.write(f"  {device.device_type:<4} {device.name}\n")
    out.write("\nData\n")
    try:
        out.write(f"  Fashion-MNIST found in {find_data_dir(data_dir, download=False)}\n")
    except FmnistError as error:
        out.write(f"  not found: {error}\n")
    return out.getvalue()
