"""Arithmetic floor of this CPU for one image, and how close `fmnist bench` came to it.

Compiles tools/cpu_peak.c with the system C compiler and runs it: register-only
loops of independent multiply-accumulate instructions measure one core's peak
int8 rate (AVX2 vpmaddubsw + vpmaddwd, the fastest exact int8 dot product
without VNNI; AVX-512 VNNI when the CPU has it) and float32 rate (256-bit FMA;
512-bit FMA when the CPU has AVX-512, since XNNPACK and oneDNN use it there). The
floor is the model's multiply-accumulates per image divided by that peak: no
kernel on this core, at one thread, can run the model faster. With a
`fmnist bench` JSON file, prints each 1-thread .tflite p50 as a fraction of
its floor.

    python tools/bench_cpu_floor.py [--bench export/bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fmnist_keras.model.cnn import macs_per_image
from fmnist_keras.system.cpu import cpu_description

SOURCE = Path(__file__).with_name("cpu_peak.c")


def measure_peaks() -> dict:
    if platform.machine() not in ("x86_64", "AMD64"):
        sys.exit(f"error: cpu_peak.c is x86-64 assembly; this machine is {platform.machine()}")
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        sys.exit("error: no C compiler found; install gcc (apt-get install -y gcc)")
    with tempfile.TemporaryDirectory(prefix="fmnist-cpu-peak-") as tmp:
        binary = Path(tmp) / "cpu_peak"
        built = subprocess.run([compiler, "-O2", "-Wall", "-Werror", str(SOURCE), "-o", str(binary)],
                               capture_output=True, text=True)  # fmt: skip
        if built.returncode != 0:
            lines = built.stderr.strip().splitlines() or ["no message"]
            first_error = next((line for line in lines if "error" in line), lines[-1])
            sys.exit(f"error: {compiler} could not build {SOURCE.name}: {first_error}")
        done = subprocess.run([str(binary)], capture_output=True, text=True)
    peaks = json.loads(done.stdout or "{}")
    if done.returncode != 0 or "error" in peaks:
        sys.exit(f"error: {peaks.get('error') or done.stderr.strip() or 'cpu_peak failed'}")
    return peaks


def bench_rows(path: Path) -> list[dict]:
    try:
        rows = list(json.loads(path.read_text())["results"])
        if all(isinstance(row, dict) and "artifact" in row for row in rows):
            return rows
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        pass
    sys.exit(f"error: {path} is not a `fmnist bench` JSON file; run `fmnist bench --output {path}`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path("export/bench.json"), help="`fmnist bench` output")
    args = parser.parse_args()

    peaks = measure_peaks()
    macs = macs_per_image()  # read off the model's layers
    # The floor uses the fastest instructions this CPU has: a kernel may use any of them.
    int8_peak = max(peaks.get("int8_avx512vnni_gmacs", 0.0), peaks["int8_avx2_gmacs"])
    f32_peak = max(peaks.get("f32_avx512_gmacs", 0.0), peaks["f32_fma_gmacs"])
    floors = {"int8": macs / int8_peak / 1e3, "float32": macs / f32_peak / 1e3}
    print(f"CPU: {cpu_description()}; peaks of one core")
    for name, rate in peaks.items():
        print(f"  peak {name.removesuffix('_gmacs'):<16} {rate:8.1f} GMAC/s")
    print(f"model: {macs:,} multiply-accumulates per image")
    print(f"floor at 1 thread: int8 {floors['int8']:.1f} µs, float32 {floors['float32']:.1f} µs per image")

    if not args.bench.is_file():
        print(f"(no {args.bench}; run `fmnist bench` to compare measured latencies with the floor)")
        return
    for row in bench_rows(args.bench):
        name = Path(row["artifact"]).name
        if row.get("threads") != 1 or "p50_us" not in row or not name.endswith(".tflite"):
            continue
        floor = floors["int8"] if "int8" in name else floors["float32"]
        print(f"  {name:<34} p50 {row['p50_us']:8.1f} µs = {floor / row['p50_us']:6.1%} of its floor")


if __name__ == "__main__":
    main()
