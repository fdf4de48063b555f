"""Training throughput: `fmnist train`'s training step vs the article's PyTorch convnet1 loop.

Both train the same network on the same real Fashion-MNIST training images
(the default split's 58,800) on this CPU. Ours is exactly what `fmnist train`
runs: its plan (seeds, op determinism, batch, schedule, and the compute dtype
that --precision picks on this CPU, auto by default), its compiled model (fused BatchNorm,
steps per execution) and its tf.data pipeline with augmentation, in one fit()
call; the article's loop does no augmentation. Per batch size: a warm-up epoch,
then the median of --epochs timed epochs (wall seconds, images/s, CPU seconds).
PyTorch runs when it is installed (`make bench` installs the `bench` extra's
version).

    python tools/bench_train.py [--batch-sizes 64 256] [--epochs 3] [--precision float32]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time

from tool_support import add_precision_option, machine_line, positive_int, run_child


def bench_keras(dataset, batch_size: int, epochs: int, precision: str) -> dict:
    import keras

    from fmnist_keras.config import TrainConfig
    from fmnist_keras.training.loop import RunContext, compiled_model, plan_run, training_batches

    # clean_epochs=0: every timed epoch augmented, as all but the last few of the default's are
    config = dataclasses.replace(
        TrainConfig(), batch_size=batch_size, epochs=epochs + 1, precision=precision, clean_epochs=0, strategy="default"
    )
    plan = plan_run(config, RunContext(log=lambda *_: None), dataset)
    model = compiled_model(config, plan)
    x, y = plan.split[:2]
    walls, cpus = [], []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            walls.append(time.perf_counter() - self.wall)
            cpus.append(time.process_time() - self.cpu)

    train_ds = training_batches(config, plan)
    model.fit(train_ds, epochs=epochs + 1, steps_per_epoch=plan.steps, shuffle=False, verbose=0,
              callbacks=[EpochTimer()])  # fmt: skip
    return {"images": len(x), "seconds": statistics.median(walls[1:]), "cpu_seconds": statistics.median(cpus[1:]),
            "dtype": plan.policy or "float32"}  # fmt: skip


def bench_torch(dataset, batch_size: int, epochs: int, precision: str) -> dict:
    from torch_reference import train_article_loop

    from fmnist_keras.config import TrainConfig
    from fmnist_keras.data.idx import training_split

    x, y, _, _ = training_split(dataset, TrainConfig().validation_split, TrainConfig().seed)
    walls, cpus = [], []
    train_article_loop(x, y, batch_size, epochs + 1, on_epoch=lambda wall, cpu: (walls.append(wall), cpus.append(cpu)))
    return {"images": len(x), "seconds": statistics.median(walls[1:]), "cpu_seconds": statistics.median(cpus[1:])}


def _worker(framework: str, batch_size: int, epochs: int, precision: str) -> None:
    from fmnist_keras.data.idx import load_data
    from fmnist_keras.system.native_logs import import_tensorflow_quietly

    if framework == "keras":
        import_tensorflow_quietly()
    bench = bench_keras if framework == "keras" else bench_torch
    print(json.dumps(bench(load_data(), batch_size, epochs, precision)))


def _measure(framework: str, batch_size: int, epochs: int, precision: str) -> dict:
    """Each framework in its own process: importing torch beside TensorFlow halves TF's threads."""
    command = [sys.executable, __file__, "--worker", framework, "--batch-sizes", str(batch_size),
               "--epochs", str(epochs), "--precision", precision]  # fmt: skip
    done = run_child(command, f"the {framework} run at batch {batch_size}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[64, 256])
    parser.add_argument("--epochs", type=positive_int, default=3, help="timed epochs after one warm-up epoch")
    add_precision_option(parser)  # ours only: the article's loop is float32
    parser.add_argument("--worker", choices=["keras", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.batch_sizes[0], args.epochs, args.precision)
        return

    from fmnist_keras.system.versions import installed_version

    torch_version = installed_version("torch")
    print(machine_line())
    print(f"Median of {args.epochs} epochs after 1 warm-up, each framework in its own process")
    print(f"{'framework':<30}{'batch':>6}{'s/epoch':>9}{'images/s':>10}{'CPU s/epoch':>13}{'speed-up':>10}")
    for batch_size in args.batch_sizes:
        ours = _measure("keras", batch_size, args.epochs, args.precision)
        rows = [(f"keras (ours, {ours['dtype']})", ours)]
        if torch_version:
            rows.append((f"pytorch {torch_version} (article)", _measure("torch", batch_size, args.epochs, "float32")))
        keras_seconds = rows[0][1]["seconds"]
        for name, r in rows:
            ratio = (
                f"{rows[-1][1]['seconds'] / keras_seconds:.2f}x" if name.startswith("keras") and len(rows) > 1 else ""
            )
            print(
                f"{name:<30}{batch_size:>6}{r['seconds']:>9.2f}{r['images'] / r['seconds']:>10,.0f}"
                f"{r['cpu_seconds']:>13.2f}{ratio:>10}",
                flush=True,
            )
    if not torch_version:
        print("PyTorch is not installed (make bench installs it): nothing to compare with the article's model")


if __name__ == "__main__":
    main()
