"""Inference cost on an AVX2-only CPU, counted on any x86-64 machine: instructions per image.

LiteRT's XNNPACK picks its kernels by the CPU's instruction sets, and no setting limits it
to AVX2. Valgrind's CPU has AVX2 and FMA but no AVX-512, so under valgrind XNNPACK runs the
kernels an AVX2 laptop runs. Callgrind counts their instructions exactly (the same count
whatever else the machine does); instructions are not seconds, but the kernels of both
files are the same kind of SIMD loop, so their ratio is the question: is int8 cheaper?

Counted for the float32 and int8 files of a trained model, and for a candidate int8 file
whose conv1 reads the image space-to-depth (2x2 blocks as 4 channels: XNNPACK pads a
1-channel input to 8 bytes per tap on AVX2; the same 5x5 weights, rearranged into a 3x3
kernel of 4 phases, so the same outputs). Each file is also timed natively on this CPU.

    python tools/bench_avx2_inference.py [--model export/model.keras] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tool_support import machine_line, positive_int, run_child

WORKER = """
import sys
import numpy as np
from fmnist_keras.runtimes.backends import litert_interpreter, quantize_input
interpreter = litert_interpreter(open(sys.argv[1], "rb").read(), num_threads=1)
detail = interpreter.get_input_details()[0]
x = quantize_input(np.load(sys.argv[2]), detail)
for _ in range(1 + int(sys.argv[3])):  # one warm-up (XNNPACK packs its weights) and the counted runs
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
"""


# Only what runs inside LiteRT's invoke is counted: Python's start-up varies from process to process.
INVOKE = "tflite::interpreter_wrapper::InterpreterWrapper::Invoke*"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("export/model.keras"))
    parser.add_argument("--runs", type=positive_int, default=200, help="inferences counted per file")
    args = parser.parse_args()
    if not args.model.is_file():
        sys.exit(f"error: {args.model} does not exist; run `fmnist train` first or pass --model")
    if shutil.which("valgrind") is None:
        sys.exit("error: valgrind is not installed; install it (Debian: apt-get install valgrind)")

    files, data = build_files(args.model)
    print(machine_line())
    print(f"{'file':<30}{'bytes':>9}{'accuracy':>10}{'AVX2 instr/image':>18}{'vs float32':>12}{'p50 here µs':>13}")
    with tempfile.TemporaryDirectory(prefix="fmnist-avx2-") as tmp:
        image = Path(tmp) / "image.npy"
        np.save(image, data.x_test[:1])
        paths = [Path(tmp) / name for name in files]
        for path, model_bytes in zip(paths, files.values(), strict=True):
            path.write_bytes(model_bytes)
        p50 = native_p50_us(paths, Path(tmp) / "bench.json")
        base = None
        for path, model_bytes in zip(paths, files.values(), strict=True):
            count = instructions_per_image(path, image, args.runs)
            base = base or count
            accuracy = accuracy_of(model_bytes, data)
            print(f"{path.name:<30}{len(model_bytes):>9,}{accuracy:>10.2%}{count:>18,.0f}{count / base:>11.2f}×"
                  f"{p50[str(path)]:>13.1f}")  # fmt: skip
    print("instructions: callgrind under valgrind (AVX2 kernels), 1 thread; p50: this CPU's own kernels, 1 thread")
    print("model_int8_s2d_conv1.tflite: the candidate, conv1 on the image's 2x2 blocks (not what fmnist exports)")


def build_files(model_path: Path) -> tuple[dict[str, bytes], object]:
    """The float32 and int8 files as `fmnist export` converts them, and the space-to-depth candidate."""
    from fmnist_keras.commands.export import calibration_images
    from fmnist_keras.config import ExportConfig
    from fmnist_keras.data.idx import load_data
    from fmnist_keras.export.converters import to_tflite
    from fmnist_keras.runtimes.keras_file import load_trained_model

    model, data, config = load_trained_model(model_path), load_data(), ExportConfig()
    calibration = calibration_images(data.x_train, data.y_train, config.calibration_samples, config.seed)
    twin = space_to_depth_twin(model)
    difference = np.abs(model.predict(data.x_test[:1000], verbose=0) - twin.predict(data.x_test[:1000], verbose=0))
    if difference.max() > config.float_tolerance:  # the gate's rule for an exact conversion
        sys.exit(f"error: the space-to-depth twin differs from the model by {difference.max():.2g}")
    files = {
        "model_float32.tflite": to_tflite(model),
        "model_int8.tflite": to_tflite(model, "int8", "int8", calibration),
        "model_int8_s2d_conv1.tflite": to_tflite(twin, "int8", "int8", calibration),
    }
    return files, data


def space_to_depth_twin(model):
    """The model with conv1 (+ its BatchNorm, folded) on the image's 2x2 blocks: exact, builtin ops."""
    import keras
    import tensorflow as tf

    weights, bias = model.get_layer("conv1").get_weights()
    bn = model.get_layer("bn1")
    gamma, beta, mean, variance = bn.get_weights()
    scale = gamma / np.sqrt(variance + bn.epsilon)
    weights, bias = weights * scale, (bias - mean) * scale + beta
    # Output pixel (2q + r), block (q + k - 1), pixel d in it: 5x5 tap 2(k - 1) + d - r + 2.
    kernel = np.zeros((3, 3, 4, 64), np.float32)
    for ry, rx, ky, kx, dy, dx in np.ndindex(2, 2, 3, 3, 2, 2):
        tap_y, tap_x = 2 * (ky - 1) + dy - ry + 2, 2 * (kx - 1) + dx - rx + 2
        if 0 <= tap_y < 5 and 0 <= tap_x < 5:
            phase = 2 * ry + rx
            kernel[ky, kx, 2 * dy + dx, 16 * phase : 16 * phase + 16] = weights[tap_y, tap_x, 0]
    layers = keras.layers
    inputs = keras.Input(model.inputs[0].shape[1:])
    x = model.get_layer("rescale")(inputs)
    x = layers.Lambda(lambda t: tf.nn.space_to_depth(t, 2))(x)
    conv = layers.Conv2D(64, 3, padding="same", activation="relu")
    x = layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2))(conv(x))
    x = model.get_layer("pool1")(x)
    for name in ("conv2", "bn2", "relu2", "pool2", "flatten", "logits"):  # the published model's own layers
        x = model.get_layer(name)(x)
    twin = keras.Model(inputs, x)
    conv.set_weights([kernel, np.tile(bias, 4)])
    return twin


def instructions_per_image(path: Path, image: Path, runs: int) -> float:
    """Callgrind's count for `runs` inferences minus its count for none, per inference."""

    def collected(n: int) -> int:
        callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--collect-atstart=no",
                     f"--toggle-collect={INVOKE}"]  # fmt: skip
        command = [*callgrind, sys.executable, "-c", WORKER, str(path), str(image), str(n)]
        done = subprocess.run(command, capture_output=True, text=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or not found:
            sys.exit(f"error: valgrind could not run {path.name}: {done.stderr.strip().splitlines()[-1:]}")
        if int(found.group(1)) == 0:
            sys.exit(f"error: callgrind counted nothing inside {INVOKE}: has LiteRT renamed it?")
        return int(found.group(1))

    return (collected(runs) - collected(0)) / runs


def native_p50_us(paths: list[Path], output: Path) -> dict[str, float]:
    """p50 latency at 1 thread on this CPU's own kernels, from `fmnist bench` (a fresh process per file)."""
    options = ["--threads", "1", "--output", str(output)]
    run_child([sys.executable, "-m", "fmnist_keras", "bench", *map(str, paths), *options], "fmnist bench")
    return {row["artifact"]: row["p50_us"] for row in json.loads(output.read_text())["results"]}


def accuracy_of(model_bytes: bytes, data) -> float:
    from fmnist_keras.runtimes.backends import tflite_logits

    return float(np.mean(tflite_logits(model_bytes, data.x_test).argmax(1) == data.y_test))


if __name__ == "__main__":
    main()
