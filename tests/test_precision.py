"""--precision: what each choice computes in, on which hardware, and reading older records."""

import pytest

from fmnist_keras.config import TrainConfig
from fmnist_keras.precision import AMX_BF16_FLAG, Precision, compute_policy

AMX_CPU = {"avx2", "avx512f", "avx512_bf16", "amx_tile", AMX_BF16_FLAG}
AVX512_BF16_CPU = {"avx2", "avx512f", "avx512_bf16"}  # bfloat16 instructions but no matrix units


@pytest.mark.parametrize(
    ("precision", "on_gpu", "flags", "policy"),
    [
        (Precision.auto, False, AMX_CPU, "mixed_bfloat16"),
        (Precision.auto, False, AVX512_BF16_CPU, None),  # measured no faster there
        (Precision.auto, False, {"avx2"}, None),
        (Precision.auto, True, AMX_CPU, None),  # not measured on a GPU: float32
        (Precision.float32, False, AMX_CPU, None),
        (Precision.mixed, False, {"avx2"}, "mixed_bfloat16"),
        (Precision.mixed, True, set(), "mixed_float16"),
    ],
)
def test_compute_policy(precision, on_gpu, flags, policy):
    assert compute_policy(precision, on_gpu, flags) == policy


def test_records_from_before_precision_read_as_what_they_ran():
    old = TrainConfig().to_dict()
    del old["precision"]
    assert TrainConfig.from_dict(old).precision == "float32"
    assert TrainConfig.from_dict({**old, "mixed_precision": True}).precision == "mixed"
    assert TrainConfig.from_dict(TrainConfig().to_dict()).precision == "auto"


def test_the_default_is_a_choice_of_the_cli():
    assert Precision(TrainConfig().precision) is Precision.auto
