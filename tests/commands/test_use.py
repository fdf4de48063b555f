"""evaluate, predict and bench on a briefly trained real model and real test images."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fmnist_keras.cli import app
from fmnist_keras.contract import CLASS_NAMES

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(demo_export):
    out, _ = demo_export
    report = json.loads((out / "report.json").read_text())
    return out, {a["name"]: a for a in report["artifacts"]}


@pytest.mark.slow
def test_evaluate_matches_the_export_report_and_compares_two(exported, trained_run, tmp_path):
    out, artifacts = exported
    target = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(trained_run / "model.keras"),
            str(out / "model_int8.tflite"),
            "--output",
            str(target),
            "--gallery",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    report = json.loads(target.read_text())
    keras_result, int8_result = report["results"]
    assert keras_result["accuracy"] == pytest.approx(artifacts["model.keras"]["accuracy"])
    assert int8_result["accuracy"] == pytest.approx(artifacts["model_int8.tflite"]["accuracy"])
    assert report["comparison"]["agreement"] == pytest.approx(artifacts["model_int8.tflite"]["agreement"])
    assert sum(row["support"] for row in keras_result["per_class"]) == 10_000
    assert np.array(keras_result["confusion_matrix"]).sum() == 10_000
    for png in (report["confusion_png"], report["gallery_png"]):
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "precision" in result.output and "most confused" in result.output


@pytest.mark.slow
def test_evaluate_saved_model_folder(exported, tmp_path):
    out, artifacts = exported
    result = runner.invoke(app, ["evaluate", str(out / "saved_model"), "--output", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    accuracy = json.loads((tmp_path / "e.json").read_text())["results"][0]["accuracy"]
    assert accuracy == pytest.approx(artifacts["saved_model"]["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("invert", ["yes", "auto"])
def test_predict_recovers_labels_of_resized_inverted_rgb_photos(invert, exported, fmnist, tmp_path):
    out, _ = exported
    paths = []
    for i in range(200):
        path = tmp_path / f"{i}.png"
        Image.fromarray(255 - fmnist.x_test[i]).resize((280, 280)).convert("RGB").save(path)
        paths.append(str(path))
    result = runner.invoke(app, ["predict", str(out / "model_int8.tflite"), *paths, "--invert", invert, "--json"])
    assert result.exit_code == 0, result.output
    predicted = [p["label"] for p in json.loads(result.output)["predictions"]]
    truth = [CLASS_NAMES[y] for y in fmnist.y_test[:200]]
    assert np.mean(np.array(predicted) == np.array(truth)) >= 0.85


def test_predict_reports_each_bad_file_and_classifies_the_rest(quick_run, fmnist, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(fmnist.x_test[0]).save(good)
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    big = tmp_path / "huge.png"
    Image.new("L", (8000, 7000)).save(big)  # 56 megapixels, tiny on disk
    rgba16 = tmp_path / "deep.png"
    Image.fromarray(fmnist.x_test[1].astype(np.uint16) * 257).save(rgba16)
    gif = tmp_path / "anim.gif"
    Image.fromarray(fmnist.x_test[2]).save(gif, save_all=True, append_images=[Image.new("L", (28, 28))])
    npy = tmp_path / "batch.npy"
    np.save(npy, fmnist.x_test[3:5, :, :, None])
    bad_npy = tmp_path / "bad.npy"
    np.save(bad_npy, np.zeros((2, 32, 32), dtype=np.float32))
    files = [good, tmp_path / "text.png", tmp_path / "empty.jpg", tmp_path / "cut.png", big, tmp_path / "nope.png",
             rgba16, gif, npy, bad_npy]  # fmt: skip
    result = runner.invoke(app, ["predict", str(quick_run / "model.keras"), *map(str, files), "--invert", "no"])
    assert result.exit_code == 1, result.output
    for expected in ("text.png: not an image", "empty.jpg: empty file", "cut.png: truncated or corrupt",
                     "huge.png: 8000x7000 is over 50 megapixels", "nope.png: no such file",
                     "bad.npy: expected uint8 of shape (N, 28, 28)"):  # fmt: skip
        assert expected in result.output
    assert "Traceback" not in result.output
    classified = [line for line in result.output.splitlines() if not line.startswith("error")]
    assert len(classified) == 5  # good, 16-bit, GIF and two .npy rows


@pytest.fixture(scope="module")
def bench_json(exported, tmp_path_factory):
    out, _ = exported
    target = tmp_path_factory.mktemp("bench") / "bench.json"
    result = runner.invoke(
        app,
        [
            "bench",
            str(out / "model_int8.tflite"),
            str(out / "saved_model"),
            "--threads",
            "1",
            "--runs",
            "50",
            "--output",
            str(target),
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    return target


@pytest.mark.slow
def test_bench_returns_ordered_percentiles(bench_json):
    rows = json.loads(bench_json.read_text())["results"]
    assert [r["kind"] for r in rows] == ["tflite", "saved_model"]
    for row in rows:
        assert 0 < row["p50_us"] <= row["p90_us"] <= row["p99_us"] and row["images_per_second"] > 0
    assert rows[1]["throughput_batch"] == 256


@pytest.mark.slow
def test_bench_says_when_xnnpack_ran_with_amx(bench_json):
    # XNNPACK asks Linux for the AMX tiles where the CPU has them, and its int8 kernels then run
    # on them (3.5x slower for this model at batch 1 on a Xeon): the row and the table say so.
    from fmnist_keras.commands.bench import AMX_NOTE, bench_table
    from fmnist_keras.system.cpu import cpu_flags, has_amx

    rows = json.loads(bench_json.read_text())["results"]
    assert rows[0]["xnnpack_amx"] is has_amx(cpu_flags())
    assert "xnnpack_amx" not in rows[1]  # TensorFlow's oneDNN asks for AMX whatever the model
    assert (AMX_NOTE in bench_table(rows)) is rows[0]["xnnpack_amx"]
    from tests.conftest import in_fresh_process

    asked = in_fresh_process("from fmnist_keras.system.cpu import amx_in_use; print(amx_in_use())")
    assert asked == "False"  # nothing has asked yet in a fresh process


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        ("broken.tflite", b"not a flatbuffer", "is not a valid .tflite model"),
        ("broken.keras", b"", "is not a .keras zip archive"),
        ("photo.png", b"\x89PNG", "is neither .keras, .tflite nor a SavedModel folder"),
    ],
)
def test_bench_refuses_a_bad_artifact_before_timing_anything(name, payload, expected, exported, tmp_path):
    out, _ = exported
    bad = tmp_path / name
    bad.write_bytes(payload)
    target = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", str(out / "model_int8.tflite"), str(bad), "--output", str(target)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {bad} {expected}") and len(result.output.strip().splitlines()) == 1
    assert not target.exists()


@pytest.mark.slow
def test_measured_latency_is_above_the_cpu_floor(bench_json):
    """The floor tool's peak is an upper bound: no measured p50 may beat it (a wrong peak would)."""
    tool = Path(__file__).parents[2] / "tools" / "bench_cpu_floor.py"
    done = subprocess.run([sys.executable, str(tool), "--bench", str(bench_json)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    fractions = re.findall(r"model_int8\.tflite\s+p50\s+[\d.]+ µs =\s+([\d.]+)% of its floor", done.stdout)
    assert len(fractions) == 1, done.stdout
    assert 0 < float(fractions[0]) <= 100


def test_cpu_description_names_model_family_and_kernel_flags(tmp_path):
    from fmnist_keras.system.cpu import cpu_description

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16\n\n"
        "processor\t: 1\nmodel name\t: another entry\n"
    )
    assert cpu_description(cpuinfo).startswith("AMD EPYC (family 25 model 17; AVX2 AVX-512F VNNI BF16), ")
    cpuinfo.write_text("model name\t: Old CPU\nflags\t\t: fpu sse2\n")
    assert cpu_description(cpuinfo).startswith("Old CPU (no AVX2), ")
