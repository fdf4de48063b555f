"""Training throughput: this package's Keras pipeline vs the article's PyTorch convnet1.

Both train the same network on the same real Fashion-MNIST training images on
this CPU. Per batch size: a warm-up epoch, then the median of --epochs timed
epochs (wall seconds, images/s, CPU seconds). PyTorch runs when it is installed
(`pip install -e '.[bench]'`).

    python tools/bench_train.py [--batch-sizes 100 256] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np


def _timed_epochs(run_epoch, epochs: int) -> dict:
    run_epoch()  # warm-up: graph tracing, allocator, caches
    walls, cpus = [], []
    for _ in range(epochs):
        wall, cpu = time.perf_counter(), time.process_time()
        run_epoch()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"seconds": statistics.median(walls), "cpu_seconds": statistics.median(cpus)}


def bench_keras(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> dict:
    import keras

    from fmnist_keras.config import TrainConfig
    from fmnist_keras.model import build_model
    from fmnist_keras.pipeline import steps_per_epoch, training_dataset

    config = TrainConfig()
    keras.utils.set_random_seed(0)
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),  # the article's optimizer; the schedule does not change speed
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        jit_compile=False,
    )
    steps = steps_per_epoch(len(x), batch_size)
    # The package's real pipeline, augmentation included (the PyTorch loop does none),
    # in one fit() call as `fmnist train` runs it; the first epoch is the warm-up.
    dataset = training_dataset(x, y, batch_size, 0, config.augment, config.shift_pixels)
    walls, cpus = [], []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            walls.append(time.perf_counter() - self.wall)
            cpus.append(time.process_time() - self.cpu)

    model.fit(dataset, epochs=epochs + 1, steps_per_epoch=steps, shuffle=False, verbose=0, callbacks=[EpochTimer()])
    return {"seconds": statistics.median(walls[1:]), "cpu_seconds": statistics.median(cpus[1:])}


def bench_torch(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> dict:
    import torch
    from torch import nn

    class convnet1(nn.Module):  # noqa: N801 - the article's code, as published
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels=1, out_channels=16, kernel_size=5, stride=1, padding=2)
            self.batch1 = nn.BatchNorm2d(16)
            self.relu1 = nn.ReLU()
            self.pool1 = nn.MaxPool2d(kernel_size=2)
            self.conv2 = nn.Conv2d(in_channels=16, out_channels=32, kernel_size=5, stride=1, padding=2)
            self.batch2 = nn.BatchNorm2d(32)
            self.relu2 = nn.ReLU()
            self.pool2 = nn.MaxPool2d(kernel_size=2)
            self.fc = nn.Linear(32 * 7 * 7, 10)

        def forward(self, x):
            out = self.pool1(self.relu1(self.batch1(self.conv1(x))))
            out = self.pool2(self.relu2(self.batch2(self.conv2(out))))
            return self.fc(out.view(out.size(0), -1))

    torch.manual_seed(0)
    images = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(y.astype(np.int64))
    model = convnet1()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def epoch():
        model.train()
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss_fn(model(images[idx]), labels[idx]).backward()
            optimizer.step()

    return _timed_epochs(epoch, epochs)


def _worker(framework: str, batch_size: int, epochs: int) -> None:
    from fmnist_keras.data import load_data
    from fmnist_keras.quiet import import_tensorflow_quietly

    if framework == "keras":
        import_tensorflow_quietly()
    data = load_data()
    bench = bench_keras if framework == "keras" else bench_torch
    print(json.dumps(bench(data.x_train, data.y_train, batch_size, epochs)))


def _measure(framework: str, batch_size: int, epochs: int) -> dict:
    """Each framework in its own process: importing torch beside TensorFlow halves TF's threads."""
    command = [sys.executable, __file__, "--worker", framework, "--batch-sizes", str(batch_size),
               "--epochs", str(epochs)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 256])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    parser.add_argument("--worker", choices=["keras", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.batch_sizes[0], args.epochs)
        return

    from fmnist_keras.versions import installed_version

    torch_version = installed_version("torch")
    images = 60_000
    print(
        f"{images:,} training images, median of {args.epochs} epochs after 1 warm-up, each framework in its own process"
    )
    print(f"{'framework':<30}{'batch':>6}{'s/epoch':>9}{'images/s':>10}{'CPU s/epoch':>13}{'speed-up':>10}")
    for batch_size in args.batch_sizes:
        rows = [("keras (this package)", _measure("keras", batch_size, args.epochs))]
        if torch_version:
            rows.append((f"pytorch {torch_version} (article)", _measure("torch", batch_size, args.epochs)))
        keras_seconds = rows[0][1]["seconds"]
        for name, r in rows:
            ratio = (
                f"{rows[-1][1]['seconds'] / keras_seconds:.2f}x" if name.startswith("keras") and len(rows) > 1 else ""
            )
            print(
                f"{name:<30}{batch_size:>6}{r['seconds']:>9.2f}{images / r['seconds']:>10,.0f}"
                f"{r['cpu_seconds']:>13.2f}{ratio:>10}",
                flush=True,
            )
    if not torch_version:
        print("PyTorch is not installed: pip install -e '.[bench]' to compare with the article's model")


if __name__ == "__main__":
    main()
