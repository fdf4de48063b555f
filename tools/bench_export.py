"""Export benchmark: `fmnist export --quantize int8` on a trained model, timed end to end.

Runs the real command in a fresh process (TensorFlow start-up, conversion and
verification of every artifact on all 10,000 test images included) and prints
the size, accuracy and drop of each artifact from the report it wrote.

    python tools/bench_export.py [--model export/model.keras] [--calibration-samples 500]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tool_support import run_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("export/model.keras"))
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--calibration-samples", type=int, default=500)
    parser.add_argument("--qat", action="store_true", help="add quantization-aware training")
    parser.add_argument("--sparsity", type=float, help="add a pruned int8 model")
    parser.add_argument("--clusters", type=int, help="add a weight-clustered int8 model (of the pruned one)")
    parser.add_argument("--target", default="tflite", help="mediapipe: add the MediaPipe ImageClassifier file")
    args = parser.parse_args()
    if not args.model.is_file():
        sys.exit(f"error: {args.model} does not exist; run `fmnist train` first or pass --model")

    with tempfile.TemporaryDirectory(prefix="fmnist-export-bench-") as out:
        command = ["fmnist", "export", "--model", str(args.model), "--quantize", args.quantize,
                   "--calibration-samples", str(args.calibration_samples)]  # fmt: skip
        command += ["--qat"] if args.qat else []
        command += ["--sparsity", str(args.sparsity)] if args.sparsity else []
        command += ["--clusters", str(args.clusters)] if args.clusters else []
        command += ["--target", args.target] if args.target != "tflite" else []
        command += ["--output", out]
        started = time.perf_counter()
        run_child([sys.executable, "-m", "fmnist_keras", *command[1:]], "fmnist export")
        wall = time.perf_counter() - started
        report = json.loads((Path(out) / "report.json").read_text())

    print(f"command: {' '.join(command[:-2])}")
    print(f"wall time {wall:.1f} s (process start to exit, verification of every artifact included)")
    dense_gzip = next((a["gzip_bytes"] for a in report["artifacts"] if a.get("method") == "ptq"), None)
    header = f"{'artifact':<34}{'method':<24}{'bytes':>9}{'gzip':>9}{'gzip %':>8}{'accuracy':>10}{'drop pts':>10}"
    print(header + f"{'agreement':>11}  verified on")
    for a in report["artifacts"]:
        gzip_bytes = f"{a['gzip_bytes']:,}" if a.get("gzip_bytes") else ""
        share = f"{a['gzip_bytes'] / dense_gzip:.1%}" if a.get("gzip_bytes") and dense_gzip else ""
        print(
            f"{a['name']:<34}{a['method']:<24}{a['size_bytes']:>9,}{gzip_bytes:>9}{share:>8}{a['accuracy']:>10.2%}"
            f"{a['accuracy_drop_points']:>10.2f}{a['agreement']:>11.2%}  {a.get('runtime', a['format'])}"
        )
        if "device_budget" in a:
            b = a["device_budget"]
            arena = f"{b['arena_bytes']:,} bytes (recorded {b['arena_recorded_bytes']:,}"
            print(f"    TFLM arena {arena}, smallest that runs {b['arena_smallest_bytes']:,}), "
                  f"flash {b['flash_bytes']:,}, {b['macs_total']:,} MACs")  # fmt: skip
        if "named_results" in a:
            print(f"    category_name right on {a['named_results']:,} results; {a['big_picture']['side']} px "
                  f"picture -> {a['big_picture']['category_name']}")  # fmt: skip
        if "kernel_sparsity" in a:
            print("    zero weights: " + ", ".join(f"{k} {v:.1%}" for k, v in a["kernel_sparsity"].items()))
        if "kernel_distinct_values" in a:
            print("    distinct values: " + ", ".join(f"{k} {v}" for k, v in a["kernel_distinct_values"].items()))
    if dense_gzip:
        print("gzip %: gzip -9 size as a share of the dense post-training int8 model's")
    micro = report.get("micro")
    if micro:
        agreement = micro["micro_agreement_with_litert"]
        print(f"TFLite Micro vs LiteRT agreement on {micro['micro_images']:,} images: {agreement:.1%}")


if __name__ == "__main__":
    main()
