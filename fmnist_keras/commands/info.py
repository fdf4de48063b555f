"""`fmnist info`: what model, which libraries, which devices, which data."""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import io
from pathlib import Path

from fmnist_keras.data.idx import find_data_dir
from fmnist_keras.errors import FmnistError
from fmnist_keras.model.cnn import build_model
from fmnist_keras.system import cpu, onednn, optional, versions
from fmnist_keras.training.distribute import Strategy, create_strategy, parse_tf_config
from fmnist_keras.training.precision import Precision, policy_on_this_machine


def describe(data_dir: Path | None = None, tf_config: str | None = None) -> str:
    import tensorflow as tf


    out = io.StringIO()
    model = build_model()
    model.summary(print_fn=lambda line, **_: out.write(line + "\n"))
    out.write("\nVersions\n")
    for name, version in versions.library_versions().items():
        out.write(f"  {name:<16} {version or 'not installed'}\n")
    out.write("\nOptional runtimes\n")
    out.write("".join(f"  {line}\n" for line in optional.describe()))
    out.write("\nDevices and distribution\n")
    for device in tf.config.list_physical_devices():
        out.write(f"  {device.device_type:<4} {device.name}\n")
    placement = create_strategy(Strategy.auto)
    out.write(f"  --strategy auto chooses {placement.kind.value}: {placement.replicas} replica(s) "
              f"({', '.join(placement.devices)})\n")  # fmt: skip
    policy = policy_on_this_machine(Precision.auto)
    out.write(f"  --precision auto chooses {policy or 'float32'} on {cpu.cpu_description()}\n")
    out.write(f"  TensorFlow's {onednn.describe()}\n")
    if tf_config and tf_config.strip():
        try:
            task = parse_tf_config(tf_config)
            out.write(f"  TF_CONFIG: {task.num_workers} workers, this process is {task.name}"
                      f"{' (chief)' if task.is_chief else ''}; used with --strategy multi-worker\n")  # fmt: skip
        except FmnistError as error:
            out.write(f"  TF_CONFIG is not usable: {error}\n")
    out.write("\nData\n")
    try:
        out.write(f"  Fashion-MNIST found in {find_data_dir(data_dir, download=False)}\n")
    except FmnistError as error:
        out.write(f"  not found: {error}\n")
    return out.getvalue()
