"""`--target mediapipe`: the file MediaPipe Tasks' ImageClassifier takes, checked with that real client."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist_keras.cli import app
from fmnist_keras.config import ExportConfig
from fmnist_keras.contract import CLASS_NAMES
from fmnist_keras.deploy.mediapipe import BIG_SIDE, MEDIAPIPE_FILE, classify, mediapipe_entry, read_metadata
from fmnist_keras.export.gate import Reference
from fmnist_keras.export.op_checks import deployability_problems
from fmnist_keras.runtimes.backends import io_details

runner = CliRunner()


@pytest.mark.slow
def test_the_real_client_classifies_the_published_file(demo_export, fmnist):
    out, output = demo_export
    report = json.loads((out / "report.json").read_text())
    row = next(a for a in report["artifacts"] if a["name"] == MEDIAPIPE_FILE)
    assert row["runtime"].startswith("MediaPipe Tasks ImageClassifier") and not row["failures"]
    # The recorded command reproduces the export: --io contradicts --target mediapipe, so it is left
    # out, and so is --target mediapipe, which --target web implies.
    assert "--quantize int8 --target web --output" in report["command"] and "--io" not in report["command"]
    assert "MediaPipe Tasks ImageClassifier" in output
    model_bytes = (out / MEDIAPIPE_FILE).read_bytes()

    # Independently of the export: all 10,000 test images through MediaPipe, names from the metadata.
    result = classify(model_bytes, fmnist.x_test, big_index=0)
    accuracy = np.mean(result["predicted"] == fmnist.y_test)
    assert accuracy == pytest.approx(row["accuracy"])
    assert row["accuracy_drop_points"] <= ExportConfig().max_accuracy_drop
    assert result["names"] == [CLASS_NAMES[i] for i in result["predicted"]]
    assert row["named_results"] == 10_000
    # A 280x280 picture goes through MediaPipe's own resizing to the same class.
    assert result["big"] == (result["predicted"][0], CLASS_NAMES[result["predicted"][0]])
    assert row["big_picture"]["side"] == BIG_SIDE


@pytest.mark.slow
def test_the_file_meets_mediapipes_contract_and_ours(demo_export):
    out, _ = demo_export
    model_bytes = (out / MEDIAPIPE_FILE).read_bytes()
    details = io_details(model_bytes)
    assert details["input"] == {"dtype": "uint8", "shape": [1, 28, 28, 3], "scale": 1.0, "zero_point": 0}
    assert details["output"]["dtype"] == "uint8" and details["output"]["shape"] == [1, 10]
    assert deployability_problems(model_bytes, full_integer=True) == []


@pytest.mark.slow
def test_what_we_wrote_in_the_metadata_is_what_mediapipe_reads(demo_export):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    from fmnist_keras import __version__

    out, _ = demo_export
    meta = read_metadata((out / MEDIAPIPE_FILE).read_bytes())
    assert meta["labels"] == list(CLASS_NAMES)
    assert meta["labels_file_type"] == fb.AssociatedFileType.TENSOR_AXIS_LABELS
    assert meta["version"].startswith(f"{__version__}+") and meta["license"] == "Apache-2.0"
    assert meta["min_parser_version"] == "1.0.0"  # normalization and axis labels are 1.0.0 fields


@pytest.mark.slow
def test_a_file_mediapipe_rejects_fails_with_its_reason(demo_export, fmnist):
    out, _ = demo_export
    grey_int8 = (out / "model_int8.tflite").read_bytes()  # int8, one channel: not for ImageClassifier
    labels = fmnist.y_test[:50].astype(np.int64)
    reference = Reference(fmnist.x_test[:50], labels, np.eye(10, dtype=np.float32)[labels], ExportConfig())
    row = mediapipe_entry(grey_int8, reference)
    assert len(row["failures"]) == 1 and row["failures"][0].startswith("MediaPipe rejected the file: ")
    assert "\n" not in row["failures"][0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--target", "mediapipe"], "--quantize int8"),
        (["--target", "mediapipe", "--quantize", "float16"], "--quantize int8"),
        (["--target", "mediapipe", "--quantize", "int8", "--io", "int8"], "drop --io"),
        (["--target", "tflite-micro"], "--target"),
    ],
)
def test_options_that_contradict_the_target_are_usage_errors(args, expected, tmp_path):
    out = tmp_path / "out"
    (tmp_path / "m.keras").write_bytes(b"never read: the options are refused first")
    result = runner.invoke(app, ["export", "--model", str(tmp_path / "m.keras"), "--output", str(out), *args])
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_evaluate_predict_and_bench_take_the_mediapipe_file(demo_export, fmnist, tmp_path):
    out, _ = demo_export
    model = str(out / MEDIAPIPE_FILE)
    result = runner.invoke(app, ["evaluate", model, "--output", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    row = next(a for a in json.loads((out / "report.json").read_text())["artifacts"] if a["name"] == MEDIAPIPE_FILE)
    # LiteRT here, MediaPipe in the export: the same integer graph on the same bytes. A 28x28
    # picture needs no resizing, so at most a few of 10,000 may differ (0 seen).
    assert json.loads((tmp_path / "e.json").read_text())["results"][0]["accuracy"] == pytest.approx(
        row["accuracy"], abs=0.001
    )
    np.save(tmp_path / "x.npy", fmnist.x_test[:3])
    result = runner.invoke(app, ["predict", model, str(tmp_path / "x.npy"), "--json"])
    assert result.exit_code == 0, result.output
    top = [json.loads(result.output)["predictions"][i]["top"][0] for i in range(3)]
    assert all(0.3 < t["probability"] <= 1.0 for t in top)  # the file's own probabilities, not re-softmaxed logits
    bench_json = str(tmp_path / "b.json")
    result = runner.invoke(app, ["bench", model, "--runs", "10", "--threads", "1", "--output", bench_json])
    assert result.exit_code == 0, result.output
