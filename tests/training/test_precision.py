"""--precision: what each choice computes in, on which hardware, and reading older records."""

import pytest

from fmnist_keras.config import TrainConfig
from fmnist_keras.system.cpu import AMX_FLAGS
from fmnist_keras.training.precision import Precision, compute_policy
from tests.conftest import in_fresh_process

AMX_CPU = {"avx2", "avx512f", "avx512_bf16", *AMX_FLAGS}
AVX512_BF16_CPU = {"avx2", "avx512f", "avx512_bf16"}  # bfloat16 instructions but no matrix units


@pytest.mark.parametrize(
    ("precision", "on_gpu", "flags", "onednn", "policy"),
    [
        (Precision.auto, False, AMX_CPU, True, "mixed_bfloat16"),
        (Precision.auto, False, AMX_CPU, False, None),  # TensorFlow's own bfloat16 kernels: 5x slower
        (Precision.auto, False, AVX512_BF16_CPU, True, None),  # measured no faster there
        (Precision.auto, False, {"avx2"}, True, None),
        (Precision.auto, True, AMX_CPU, True, None),  # not measured on a GPU: float32
        (Precision.float32, False, AMX_CPU, True, None),
        (Precision.mixed, False, {"avx2"}, True, "mixed_bfloat16"),
        (Precision.mixed, False, AMX_CPU, False, "mixed_bfloat16"),  # asked for: done, if slowly
        (Precision.mixed, True, set(), True, "mixed_float16"),
    ],
)
def test_compute_policy(precision, on_gpu, flags, onednn, policy):
    assert compute_policy(precision, on_gpu, flags, onednn) == policy


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
@pytest.mark.parametrize(("setting", "enabled"), [("0", False), ("1", True)])
def test_onednn_enabled_follows_tensorflows_switch(setting, enabled):
    # TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import: a fresh process per setting. If
    # a TensorFlow upgrade moves the private hook we ask, the "1" case fails here.
    env = {"TF_ENABLE_ONEDNN_OPTS": setting, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = "from fmnist_keras.compat.tensorflow import onednn_enabled; print(onednn_enabled())"
    assert in_fresh_process(code, env) == str(enabled)


def test_records_from_before_precision_read_as_what_they_ran():
    old = TrainConfig().to_dict()
    del old["precision"]
    assert TrainConfig.from_dict(old).precision == "float32"
    assert TrainConfig.from_dict({**old, "mixed_precision": True}).precision == "mixed"
    assert TrainConfig.from_dict(TrainConfig().to_dict()).precision == "auto"


def test_the_default_is_a_choice_of_the_cli():
    assert Precision(TrainConfig().precision) is Precision.auto
