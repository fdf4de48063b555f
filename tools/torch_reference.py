"""The article's PyTorch model (`convnet1`) and training loop: the reference both benchmarks time.

Adam 1e-3 and cross-entropy, as the article trains it. Needs PyTorch
(`make bench` installs the `bench` extra's version); imported only by the benchmark tools.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def train_article_loop(
    x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, on_epoch: Callable[[float, float], None] | None = None
) -> None:
    """Train convnet1 on 0..255 images `x` and labels `y`; `on_epoch(wall_s, cpu_s)` after each epoch."""
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
    model.train()
    for _ in range(epochs):
        wall, cpu = time.perf_counter(), time.process_time()
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss_fn(model(images[idx]), labels[idx]).backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch(time.perf_counter() - wall, time.process_time() - cpu)


def main() -> None:
    """Train as the article does (all 60,000 training images) and print the epochs' wall seconds as JSON."""
    import argparse
    import json

    from fmnist_keras.data.idx import load_data

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    data = load_data()
    walls: list[float] = []
    train_article_loop(data.x_train, data.y_train, args.batch_size, args.epochs, lambda wall, _: walls.append(wall))
    print(json.dumps({"epochs": args.epochs, "batch_size": args.batch_size, "epoch_seconds": walls}))


if __name__ == "__main__":
    main()
