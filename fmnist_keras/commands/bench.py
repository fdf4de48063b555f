"""`fmnist bench`: latency and throughput of each artifact at 1 and 2 threads.

Each (artifact, threads) pair is measured in a fresh process, because
TensorFlow fixes its thread pools when it starts: this module is also that
process (`python -m fmnist_keras.commands.bench PATH THREADS RUNS`). Keras and SavedModel
run through a compiled tf.function; .tflite files through LiteRT with XNNPACK.
"""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fmnist_keras import contract
from fmnist_keras.data.idx import load_data
from fmnist_keras.errors import FmnistError
from fmnist_keras.model.cnn import macs_per_image
from fmnist_keras.runtimes.artifact import artifact_kind, open_artifact
from fmnist_keras.runtimes.backends import litert_interpreter, load_serving_signature, quantize_input
from fmnist_keras.runtimes.keras_file import load_trained_model
from fmnist_keras.system.cpu import amx_in_use
from fmnist_keras.system.native_logs import import_tensorflow_quietly
from fmnist_keras.system.publish import check_output_file, ensure_writable_dir, full_disk_reported, write_json

THROUGHPUT_BATCH = 256


def default_artifacts(folder: Path) -> list[Path]:
    folder = Path(folder)
    found = [folder / "model.keras", folder / "saved_model"] + sorted(folder.glob("*.tflite"))
    return [p for p in found if p.exists()]


def check_artifacts(paths: list[Path]) -> None:
    """Open every artifact once; raise ModelFileError naming the first one that cannot be loaded."""

    if any(artifact_kind(p) != "tflite" for p in paths):
        import_tensorflow_quietly()
    for path in paths:
        open_artifact(path)


def _percentiles(seconds: list[float]) -> dict:
    us = np.asarray(seconds) * 1e6
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return {"p50_us": float(p50), "p90_us": float(p90), "p99_us": float(p99), "runs": len(us)}


def _time_calls(call, runs: int, warmup: int | None = None) -> list[float]:
    """Seconds of each of `runs` calls, after `warmup` untimed ones (default: a tenth, at least 20)."""
    for _ in range(max(20, runs // 10) if warmup is None else warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def measure(path: Path, threads: int, runs: int, images: np.ndarray) -> dict:
    """Run in a fresh process: batch-1 latency percentiles and best-batch throughput."""

    kind = artifact_kind(path)
    if kind == "tflite":
        latency, batch, throughput = _time_litert(Path(path), threads, runs, images)
    else:
        latency, batch, throughput = _time_tensorflow(Path(path), kind, threads, runs, images)
    stats = _percentiles(latency)
    result = {
        "artifact": str(path),
        "kind": kind,
        "threads": threads,
        **stats,
        "throughput_batch": batch,
        "images_per_second": throughput,
        "gmacs_per_second_batch1": macs_per_image() / (stats["p50_us"] * 1e-6) / 1e9,
    }
    if kind == "tflite":  # TensorFlow's oneDNN asks for AMX too, so only a LiteRT process tells
        result["xnnpack_amx"] = amx_in_use()
    return result


def _time_litert(path: Path, threads: int, runs: int, images: np.ndarray):
    """A .tflite on LiteRT (XNNPACK). Deployable files have a static batch of 1: throughput is 1/latency."""

    interpreter = litert_interpreter(path.read_bytes(), num_threads=threads)
    detail = interpreter.get_input_details()[0]
    x = quantize_input(images[:1], detail)

    def one():
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()

    latency = _time_calls(one, runs)
    batch = int(detail["shape"][0])
    return latency, batch, batch / float(np.median(latency))


def _time_tensorflow(path: Path, kind: str, threads: int, runs: int, images: np.ndarray):
    """A .keras or SavedModel through a compiled tf.function: latency at batch 1, throughput at THROUGHPUT_BATCH."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if kind == "keras":

        model = load_trained_model(path)
        fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
    else:

        serve = load_serving_signature(path)
        fn = tf.function(lambda x: serve(pixels=x)["logits"])
    x1 = tf.constant(contract.model_batch(images[:1]))
    latency = _time_calls(lambda: fn(x1).numpy(), runs)
    xb = tf.constant(contract.model_batch(images[:THROUGHPUT_BATCH]))
    batch_times = _time_calls(lambda: fn(xb).numpy(), 30, 5)
    return latency, THROUGHPUT_BATCH, THROUGHPUT_BATCH / float(np.median(batch_times))


def bench_artifacts(paths: list[Path], threads: list[int], runs: int, progress=None) -> list[dict]:
    """Measure every (artifact, threads) pair, each in its own process."""
    jobs = [(p, t) for p in paths for t in threads]
    results = []
    for path, thread_count in jobs:
        command = [sys.executable, "-m", "fmnist_keras.commands.bench", str(path), str(thread_count), str(runs)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1].removeprefix("error: ") if lines else f"failed (exit {done.returncode})"
            results.append({"artifact": str(path), "threads": thread_count, "error": reason})
        else:
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        if progress:
            progress(len(results), len(jobs))
    return results


def bench_plan(paths: list[Path], output: Path, folder: Path) -> list[Path]:
    """The artifacts `fmnist bench` will time (default: the models in `folder`), each opened and
    checked, and `output`'s folder proven writable: a bad file or folder fails here, in one line,
    before minutes of timing and with nothing written."""

    paths = list(paths) or default_artifacts(folder)
    if not paths:
        raise FmnistError(f"no models in {folder}/; run `fmnist train` and `fmnist export`, or name artifacts")
    check_artifacts(paths)
    check_output_file(output)
    ensure_writable_dir(Path(output).parent)
    load_data()  # the workers read the test images: missing or bad data is one line here, not one per row
    return paths


def bench_and_write(paths: list[Path], threads: list[int], runs: int, output: Path, progress=None):
    """Time every (artifact, threads) pair and write `output`; returns (table, whether any failed)."""

    results = bench_artifacts(paths, threads, runs, progress)
    if all("error" in r for r in results):  # nothing measured: keep the last good file
        raise FmnistError(f"every measurement failed ({results[0]['error']}); {output} was left as it was")
    with full_disk_reported(Path(output).parent, "the timings were not saved; free some space or pass --output"):
        write_json(Path(output), {"runs": runs, "results": results})
    return bench_table(results), any("error" in r for r in results)


def _worker(argv: list[str]) -> int:
    """One measurement in this fresh process; prints its JSON (the parent reads the last line)."""

    path, threads, runs = Path(argv[0]), int(argv[1]), int(argv[2])
    import_tensorflow_quietly()
    try:
        print(json.dumps(measure(path, threads, runs, load_data().x_test[:256])))
    except FmnistError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))


# Measured on a Xeon with AMX (docs/benchmarks.md): the int8 file took 96-98 us at batch 1 on
# XNNPACK's AMX kernels against 26-28 us on its AVX-512 VNNI ones.
AMX_NOTE = (
    "note: XNNPACK ran the .tflite files with this CPU's AMX tiles enabled. For this int8\n"
    "model at batch 1 we measured them 3.5x slower than its VNNI kernels on a Xeon\n"
    "(docs/benchmarks.md); tools/noamx_exec.c times it without them."
)


def bench_table(results: list[dict]) -> str:
    lines = [
        f"{'artifact':<34}{'threads':>8}{'p50 µs':>9}{'p90 µs':>9}{'p99 µs':>9}{'img/s':>10}{'batch':>6}{'GMAC/s':>8}"
    ]
    for r in results:
        name = Path(r["artifact"]).name
        if "error" in r:
            lines.append(f"{name:<34}{r['threads']:>8}  error: {r['error']}")
            continue
        lines.append(
            f"{name:<34}{r['threads']:>8}{r['p50_us']:>9.1f}{r['p90_us']:>9.1f}{r['p99_us']:>9.1f}"
            f"{r['images_per_second']:>10,.0f}{r['throughput_batch']:>6}{r['gmacs_per_second_batch1']:>8.1f}"
        )
    if any(r.get("xnnpack_amx") for r in results):
        lines.append(AMX_NOTE)
    return "\n".join(lines)
