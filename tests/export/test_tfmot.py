"""QAT and pruning (tensorflow-model-optimization) on a briefly trained real model."""

import dataclasses
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_keras.cli import app
from fmnist_keras.commands.export import export_and_validate
from fmnist_keras.config import ExportConfig, TrainConfig
from fmnist_keras.export.op_checks import deployability_problems
from fmnist_keras.export.request import ExportRequest
from fmnist_keras.runtimes.backends import tflite_logits

runner = CliRunner()
# These tests check the tfmot paths (fine-tune, conversion, full-integer ops, sparsity and
# distinct values kept, Keras 3 left in charge), not the recipes' accuracy, which
# tools/bench_export.py measures on a converged model. The fixture is a 2-epoch model, far
# from converged, and one fine-tune epoch moves it by a CPU-dependent amount: QAT on a
# quarter of the images dropped 0.84 and 0.96 points on an AVX-512 EPYC (0.06 with half
# the images), under 0.5 on an AVX2 one. A broken path (1/255 not folded, weights not
# copied, wrong IO scale, zeros lost) costs tens of points. So the gate here is 3 points:
# 3x the largest drop seen, far below any breakage.
TEST_MAX_DROP = 3.0
# One fine-tune epoch on a quarter of the images: the paths run whole, at a quarter of the cost.
QUICK = dataclasses.replace(
    ExportConfig(), qat_epochs=1, prune_epochs=1, max_accuracy_drop=TEST_MAX_DROP, finetune_max_images=15_000
)


@pytest.mark.slow
def test_qat_export_passes_the_gate_and_leaves_keras3_in_charge(model_copy, tmp_path, fmnist):
    legacy_flag = os.environ.get("TF_USE_LEGACY_KERAS")
    request = ExportRequest(model_copy, tmp_path, quantize="int8", qat=True, config=QUICK,
                            c_array="model_int8_qat.tflite")  # fmt: skip
    report = export_and_validate(request, log=print)
    qat = next(a for a in report["artifacts"] if a["method"] == "qat")
    ptq = next(a for a in report["artifacts"] if a["method"] == "ptq")
    assert qat["name"] == "model_int8_qat.tflite" and not qat["failures"]
    assert qat["accuracy"] >= ptq["accuracy"] - TEST_MAX_DROP / 100  # same model, quantized two ways
    model_bytes = (tmp_path / "model_int8_qat.tflite").read_bytes()
    assert deployability_problems(model_bytes, full_integer=True) == []
    logits = tflite_logits(model_bytes, fmnist.x_test)
    assert np.mean(logits.argmax(1) == fmnist.y_test) == pytest.approx(qat["accuracy"])
    assert report["micro"]["source"] == "model_int8_qat.tflite"

    # tfmot's import must not have switched this process (or its children) to Keras 2.
    assert os.environ.get("TF_USE_LEGACY_KERAS") == legacy_flag
    import keras

    from fmnist_keras.model.cnn import build_model
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    assert keras.__version__.startswith("3.") and type(build_model()).__module__.startswith("keras.")
    metrics = train_and_evaluate(
        TrainConfig(epochs=1, max_train_images=1000, batch_size=100), tmp_path / "after", RunContext(verbose=0)
    )
    assert metrics["num_params"] == 29_130
    second = export_and_validate(ExportRequest(tmp_path / "after" / "model.keras", tmp_path / "after"), log=print)
    assert second["passed"]


@pytest.mark.slow
def test_pruned_and_clustered_exports_reach_the_requested_sparsity_and_values(model_copy, tmp_path):
    request = ExportRequest(model_copy, tmp_path, quantize="int8", sparsity=0.5, clusters=16, config=QUICK)
    report = export_and_validate(request, log=print)
    by_method = {a["method"]: a for a in report["artifacts"] if "method" in a}
    pruned, dense = by_method["ptq+pruning"], by_method["ptq"]
    assert pruned["name"] == "model_int8_sparse50.tflite" and not pruned["failures"]
    for layer, fraction in pruned["kernel_sparsity"].items():
        assert abs(fraction - 0.5) <= 0.01, layer
    assert pruned["gzip_bytes"] < dense["gzip_bytes"]
    assert (tmp_path / "model_int8_sparse50.tflite").stat().st_size == pruned["size_bytes"]

    clustered = by_method["ptq+pruning+clustering"]
    assert clustered["name"] == "model_int8_sparse50_c16.tflite" and not clustered["failures"]
    for layer, fraction in clustered["kernel_sparsity"].items():
        assert abs(fraction - 0.5) <= 0.01, layer  # clustering kept the zeros
    assert all(n <= 17 for n in clustered["kernel_distinct_values"].values())  # 16 centroids + zero
    assert clustered["gzip_bytes"] < pruned["gzip_bytes"]
    # The int8 file itself holds few distinct weight bytes, not just the float model: per-channel
    # scales map the 16 centroids onto a few shared byte sets (measured: 137 vs 600+ when only pruned).
    few = _distinct_int8_weight_bytes(tmp_path / "model_int8_sparse50_c16.tflite")
    assert few < _distinct_int8_weight_bytes(tmp_path / "model_int8_sparse50.tflite") / 2


def _distinct_int8_weight_bytes(path) -> int:
    """Sum over the int8 kernels of a .tflite of their distinct byte values."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    kernels = [  # conv1 (16,5,5,1), conv2 (32,5,5,16), logits (10,1568); activations have batch 1 first
        d for d in interpreter.get_tensor_details() if d["dtype"] == np.int8 and d["shape"][0] in (10, 16, 32)
    ]
    assert len(kernels) == 3
    return sum(np.unique(interpreter.get_tensor(d["index"])).size for d in kernels)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--quantize", "int8", "--sparsity", "0"], "--sparsity"),
        (["--quantize", "int8", "--sparsity", "0.96"], "--sparsity"),
        (["--quantize", "int8", "--qat", "--qat-epochs", "0"], "--qat-epochs"),
        (["--quantize", "float16", "--qat"], "full-integer"),
        (["--quantize", "dynamic", "--sparsity", "0.5"], "full-integer"),
        (["--quantize", "int8", "--clusters", "1"], "--clusters"),
        (["--quantize", "int8", "--clusters", "257"], "--clusters"),
        (["--quantize", "int8", "--qat", "--clusters", "16"], "--clusters"),
        (["--clusters", "16"], "full-integer"),
    ],
)
def test_bad_optimization_options_are_usage_errors(args, expected, quick_model_copy, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "--model", str(quick_model_copy), "--output", str(out), *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not out.exists()
