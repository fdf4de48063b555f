"""Which dtype training computes in: `--precision` and what "auto" picks on this machine.

Kept free of TensorFlow imports (the CLI's --help reads the choices).
"""

from __future__ import annotations

from enum import Enum

from fmnist_keras.system import onednn
from fmnist_keras.system.cpu import cpu_flags, has_amx
from fmnist_keras.training.distribute import num_gpus


class Precision(str, Enum):
    auto = "auto"
    float32 = "float32"
    mixed = "mixed"


# "auto" trains in bfloat16 on CPUs with AMX (system.cpu.has_amx): oneDNN runs bfloat16
# convolutions on its matrix units. On a 2-core Xeon (family 6 model 167) an epoch at batch
# 64 took 5.2-5.5 s in mixed_bfloat16 against 7.8 s in float32, 3.7 against 7.3 s at batch
# 256. Without AMX (an AVX-512 BF16 EPYC) bfloat16 was no faster: the casts ate what the
# convolutions gained.


def compute_policy(precision: Precision, on_gpu: bool, cpu_flags: set[str], onednn: bool) -> str | None:
    """The Keras dtype policy training uses; None for plain float32.

    Weights, the logits layer and the saved model stay float32 whatever this picks.
    "auto" is mixed precision only where it was measured to pay: CPUs with AMX, with TensorFlow's
    oneDNN kernels on. With them off (TF_ENABLE_ONEDNN_OPTS=0), TensorFlow's own bfloat16 kernels
    took 5x float32's time per step on that Xeon.
    """
    if precision is Precision.float32:
        return None
    if precision is Precision.auto and (on_gpu or not onednn or not has_amx(cpu_flags)):
        return None
    # float16 has fast GPU kernels (with loss scaling); on CPUs only bfloat16 is both fast and safe.
    return "mixed_float16" if on_gpu else "mixed_bfloat16"


def policy_on_this_machine(precision: Precision) -> str | None:
    """compute_policy for this process's devices and CPU (imports TensorFlow)."""

    return compute_policy(precision, bool(num_gpus()), cpu_flags(), onednn.enabled())
