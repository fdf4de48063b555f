"""Training throughput: this package's Keras pipeline vs the article's PyTorch convnet1.

Both train the same network on the same real Fashion-MNIST training images on
this CPU. Per batch size: a warm-up epoch, then the median of --epochs timed
epochs (wall seconds, images/s, CPU seconds). PyTorch runs when it is installed
(`pip install -e '.[bench]'`).

    python tools/bench_train.py [--batch-sizes 100 256] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
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
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        jit_compile=False,
    )
    steps = steps_per_epoch(len(x), batch_size)
    # The package's real pipeline, augmentation included (the PyTorch loop does none).
    dataset = training_dataset(x, y, batch_size, 0, config.augment, config.shift_pixels)
    return _timed_epochs(lambda: model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0), epochs)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 256])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    args = parser.parse_args()

    from fmnist_keras.data import load_data
    from fmnist_keras.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    data = load_data()
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    print(f"{len(data.x_train):,} training images, median of {args.epochs} epochs after 1 warm-up")
    print(f"{'framework':<26}{'batch':>6}{'s/epoch':>9}{'images/s':>10}{'CPU s/epoch':>13}{'speed-up':>10}")
    for batch_size in args.batch_sizes:
        keras_result = bench_keras(data.x_train, data.y_train, batch_size, args.epochs)
        rows = [("keras (this package)", keras_result)]
        if torch_version:
            rows.append(
                (f"pytorch {torch_version} (article)", bench_torch(data.x_train, data.y_train, batch_size, args.epochs))
            )
        for name, r in rows:
            ratio = (
                rows[-1][1]["seconds"] / keras_result["seconds"] if name.startswith("keras") and len(rows) > 1 else None
            )
            print(
                f"{name:<26}{batch_size:>6}{r['seconds']:>9.2f}{len(data.x_train) / r['seconds']:>10,.0f}"
                f"{r['cpu_seconds']:>13.2f}{(f'{ratio:.2f}x' if ratio else ''):>10}",
                flush=True,
            )
    if not torch_version:
        print("PyTorch is not installed: pip install -e '.[bench]' to compare with the article's model")


if __name__ == "__main__":
    main()
