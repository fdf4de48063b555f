"""Recipe screen: the default `fmnist train` with one lever changed, per seed, scored once on the test set.

Each (lever, seed) run trains in a fresh process with `--threads` threads
(default 1), `--jobs` runs at a time (default 2: one per core of a 2-core
machine), and prints a table of test accuracy per seed with the mean and its
difference from the `default` row. One thread gives other digits than the two
of `fmnist train`, so compare a lever with the `default` row of the same
screen, not with tools/bench_accuracy.py.

Levers that are TrainConfig fields run as overrides. The others are recipes
that `fmnist train` does not offer, because they did not pay (weight averaging,
SGD, random erasing, ...): they are patched into the worker process's copy of
the library here, and tests/test_tools.py runs each patch for a few steps so a
change in the library cannot silently turn one into a no-op.

Levers joined by "+" run together (their overrides merged, their patches applied
in order), e.g. `label-smoothing-0+no-clean-epochs`.

    python tools/screen_recipe.py default ema-0.999 --seeds 0 1 2 [--output results.jsonl]
    python tools/screen_recipe.py --list
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tool_support import positive_int, run_child, seed_number

from fmnist_keras.contract import SIDE


@dataclass(frozen=True)
class Lever:
    what: str
    overrides: dict = field(default_factory=dict)  # TrainConfig fields
    patch: Callable | None = None  # one of the patch_* functions below
    arg: float | None = None  # the patch's parameter


# --- patches: each changes the worker's copy of the library before it trains ---------------------


def patch_ema(momentum: float, config) -> None:
    import functools

    import keras

    keras.optimizers.Adam = functools.partial(keras.optimizers.Adam, use_ema=True, ema_momentum=momentum)


def patch_sgd(_, config) -> None:
    import keras

    def sgd(learning_rate, weight_decay=None):
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=weight_decay)

    keras.optimizers.Adam = sgd  # train.compiled_model builds its optimizer as keras.optimizers.Adam(...)


def patch_bn_momentum(momentum: float, config) -> None:
    from fmnist_keras.model import fused_batchnorm as fused

    class BatchNorm(fused.FusedBatchNormalization):
        def __init__(self, **kwargs):
            super().__init__(**{**kwargs, "momentum": momentum})

    fused.FusedBatchNormalization = BatchNorm  # model.build_model imports it at call time


def _wrap_augmentation(change) -> None:
    """pipeline.augment_batch followed by change(clean, augmented, seed_pair)."""
    from fmnist_keras.data import tf_datasets as pipeline

    original = pipeline.augment_batch

    def augment_batch(images, seed_pair, augmentation):
        return change(images, original(images, seed_pair, augmentation), seed_pair)

    pipeline.augment_batch = augment_batch


def _coin(seed_pair, salt: int, images, p: float):
    import tensorflow as tf

    seed = tf.random.experimental.stateless_fold_in(seed_pair, salt)
    return tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) < p


def patch_erasing(_, config) -> None:
    import tensorflow as tf

    def erase(clean, augmented, seed_pair):
        hit = _coin(seed_pair, 11, clean, 0.5)
        fold_in = tf.random.experimental.stateless_fold_in
        corner_seed = fold_in(fold_in(seed_pair, 11), 1)  # the coin's seed, folded once more
        corner = tf.random.stateless_uniform([tf.shape(clean)[0], 2], corner_seed, 0, SIDE - 10 + 1, dtype=tf.int32)
        r = tf.range(SIDE)[None, :]
        rows = (r >= corner[:, :1]) & (r < corner[:, :1] + 10)
        cols = (r >= corner[:, 1:]) & (r < corner[:, 1:] + 10)
        box = (rows[:, :, None] & cols[:, None, :])[..., None]
        return tf.where(hit & box, tf.zeros_like(augmented), augmented)

    _wrap_augmentation(erase)


def patch_shift_fraction(fraction: float, config) -> None:
    import tensorflow as tf

    _wrap_augmentation(lambda clean, augmented, seed_pair: tf.where(_coin(seed_pair, 7, clean, fraction),
                                                                    augmented, clean))  # fmt: skip


def patch_self_distillation(alpha: float, config) -> dict:
    """PS-KD (Kim et al., 2021): epoch t learns (1 - a_t) y + a_t p_{t-1}(x), a_t = alpha t / epochs, where
    p_{t-1}(x) is the model's own softmax on that image one epoch earlier, kept in a table written by the
    training forward pass itself (no extra compute)."""
    import types

    import numpy as np
    import tensorflow as tf

    from fmnist_keras.contract import NUM_CLASSES
    from fmnist_keras.data import tf_datasets as pipeline
    from fmnist_keras.training import loop as train

    table = {}
    original_dataset, original_compiled = pipeline.training_dataset, train.compiled_model

    def training_dataset(images, labels, batches):
        # The index of each image rides through the same pipeline as a picture whose pixels all hold
        # it (exact in float32), so both see the same shuffle; train_step checks the labels agree.
        n = len(images)
        index_images = np.repeat(np.arange(n, dtype=np.float32)[:, None], SIDE * SIDE, axis=1)
        indices = original_dataset(index_images, labels, pipeline.Batches(batches.size, batches.seed, None))
        table["probs"] = tf.Variable(tf.zeros([n, NUM_CLASSES]), trainable=False)
        real = original_dataset(images, labels, batches)
        joined = tf.data.Dataset.zip(real, indices)
        return joined.map(lambda xy, iy: (xy[0], (xy[1], iy[1], tf.cast(iy[0][:, 0, 0, 0], tf.int32))))

    def compiled_model(cfg, plan):
        model = original_compiled(cfg, plan)

        def train_step(self, data):
            x, (onehot, onehot_again, index) = data
            tf.debugging.assert_equal(onehot, onehot_again, "the index pipeline lost step with the images")
            a = alpha * tf.cast(self.optimizer.iterations // plan.steps, tf.float32) / cfg.epochs
            target = (1.0 - a) * onehot + a * tf.gather(table["probs"], index)
            with tf.GradientTape() as tape:
                logits = self(x, training=True)
                loss = self._compute_loss(x=x, y=target, y_pred=logits, sample_weight=None, training=True)
                self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
            gradients = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(gradients, self.trainable_weights)
            table["probs"].scatter_nd_update(index[:, None], tf.nn.softmax(tf.cast(logits, tf.float32)))
            return self.compute_metrics(x, onehot, logits, sample_weight=None)

        model.train_step = types.MethodType(train_step, model)
        return model

    pipeline.training_dataset, train.compiled_model = training_dataset, compiled_model
    return table  # {"probs": the per-image table}, once training has built its dataset


LEVERS = {
    "default": Lever("the default recipe (fmnist_keras.config.TrainConfig)"),
    "weight-decay-0.005": Lever("decoupled weight decay 0.005 (AdamW-style)", {"weight_decay": 0.005}),
    "weight-decay-0.02": Lever("decoupled weight decay 0.02", {"weight_decay": 0.02}),
    "shift-2px": Lever("random shifts of up to 2 px instead of 1", {"shift_pixels": 2}),
    "flip": Lever("random horizontal flips on top of the shifts", {"flip": True}),
    "no-augmentation": Lever("no augmentation at all", {"augment": False}),
    "label-smoothing-0": Lever("no label smoothing (default 0.1)", {"label_smoothing": 0.0}),
    "label-smoothing-0.05": Lever("label smoothing 0.05", {"label_smoothing": 0.05}),
    "lr-3e-3": Lever("peak learning rate 3e-3 (default 2e-3)", {"learning_rate": 3e-3}),
    "batch-32": Lever("batch 32 (default 64), as many epochs", {"batch_size": 32}),
    # Larger batches run faster per epoch on CPUs without AMX (docs/benchmarks.md), which
    # could buy back the float32 time budget if they cost no accuracy.
    "batch-128": Lever("batch 128, as many epochs, the same learning rate", {"batch_size": 128}),
    "batch-128-lr-3e-3": Lever(
        "batch 128, peak learning rate 3e-3 (about 2e-3 x sqrt 2)", {"batch_size": 128, "learning_rate": 3e-3}
    ),
    "hold-out-10pc": Lever(
        "10 % held out, 25 epochs (an earlier default: as many steps)", {"validation_split": 0.1, "epochs": 25}
    ),
    "ema-0.999": Lever("Adam with weight averaging (use_ema, momentum 0.999)", patch=patch_ema, arg=0.999),
    "sgd-nesterov": Lever(
        "SGD, Nesterov momentum 0.9, peak learning rate 0.05, weight decay 5e-4",
        {"learning_rate": 0.05, "weight_decay": 5e-4},
        patch=patch_sgd,
    ),
    "bn-momentum-0.99": Lever(
        "BatchNorm momentum 0.99 (Keras's default; ours is PyTorch's 0.9)", patch=patch_bn_momentum, arg=0.99
    ),  # fmt: skip
    "random-erasing": Lever("random erasing: a black 10x10 box in half of the images", patch=patch_erasing),
    "half-shifted": Lever("only half of the images shifted", patch=patch_shift_fraction, arg=0.5),
    "no-clean-epochs": Lever("every epoch augmented (the default before clean_epochs)", {"clean_epochs": 0}),
    "self-distill-0.8": Lever(
        "progressive self-distillation (PS-KD): target (1-a)y + a p_prev(x), a rising to 0.8",
        patch=patch_self_distillation,
        arg=0.8,
    ),
    "self-distill-0.8-ls0": Lever(
        "the same without label smoothing", {"label_smoothing": 0.0}, patch=patch_self_distillation, arg=0.8
    ),
}


# --- one run, in a worker process ----------------------------------------------------------------


def apply_levers(name: str, seed: int, extra: dict):
    """The TrainConfig of lever `name` (or of levers joined by "+") with `extra` fields on top; applies
    the levers' patches to this process's copy of the library, in order."""
    from fmnist_keras.config import TrainConfig

    levers = [LEVERS[part] for part in name.split("+")]
    overrides = {k: v for lever in levers for k, v in lever.overrides.items()}
    config = TrainConfig(seed=seed, **{**overrides, **extra})
    for lever in levers:
        if lever.patch:
            lever.patch(lever.arg, config)
    return config


def _worker(lever_name: str, seed: int, threads: int, extra: dict) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from fmnist_keras.training import loop as train

    config = apply_levers(lever_name, seed, extra)
    workdir = Path(tempfile.mkdtemp(prefix="fmnist-screen-"))
    try:
        metrics = train.train_and_evaluate(
            config, workdir, train.RunContext(overwrite=True, verbose=0, log=lambda *_: None)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    keys = ("test_accuracy", "best_val_accuracy", "wall_seconds", "cpu")
    print(json.dumps({"lever": lever_name, "seed": seed, "threads": threads,
                      "compute_dtype": metrics["distribution"]["compute_dtype"],
                      **{k: metrics[k] for k in keys}, "config": config.to_dict()}))  # fmt: skip


def _run(lever: str, seed: int, args) -> dict:
    command = [sys.executable, __file__, "--worker", lever, "--seeds", str(seed), "--threads", str(args.threads)]
    for flag in ("epochs", "max_train_images"):
        if getattr(args, flag) is not None:
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    done = run_child(command, f"lever {lever}, seed {seed}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_table(results: list[dict], levers: list[str], seeds: list[int]) -> None:
    acc = {(r["lever"], r["seed"]): r["test_accuracy"] for r in results}
    means = {lever: statistics.mean(acc[lever, s] for s in seeds) for lever in levers}
    w = max(22, *(len(lever) + 1 for lever in levers))
    print(f"{'lever':<{w}}" + "".join(f"{'seed ' + str(s):>9}" for s in seeds) + f"{'mean':>9}{'vs default':>12}")
    for lever in levers:
        delta = f"{(means[lever] - means['default']) * 100:+.2f}" if "default" in means and lever != "default" else ""
        cells = "".join(f"{acc[lever, s]:>9.2%}" for s in seeds)
        print(f"{lever:<{w}}{cells}{means[lever]:>9.2%}{delta:>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "levers",
        nargs="*",
        metavar="LEVER",
        help="names from --list, or several joined by +; include default to compare",
    )
    parser.add_argument("--list", action="store_true", help="print the levers and exit")
    parser.add_argument("--seeds", type=seed_number, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=positive_int, default=1, help="TensorFlow threads per run")
    parser.add_argument("--jobs", type=positive_int, default=2, help="runs at a time")
    parser.add_argument("--output", type=Path, help="append one JSON line per run to this file")
    parser.add_argument("--epochs", type=positive_int, help="override every lever's epochs (smoke tests)")
    parser.add_argument("--max-train-images", type=positive_int, help="train on the first N images (smoke tests)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    extra = {k: v for k, v in (("epochs", args.epochs), ("max_train_images", args.max_train_images)) if v}
    if args.worker:
        _worker(args.worker, args.seeds[0], args.threads, extra)
        return
    if args.list or not args.levers:
        for name, lever in LEVERS.items():
            print(f"{name:<22}{lever.what}")
        return
    unknown = [part for name in args.levers for part in name.split("+") if part not in LEVERS]
    if unknown:
        parser.error(f"unknown lever(s) {', '.join(unknown)}; --list shows the names")

    from fmnist_keras.system.cpu import cpu_description

    print(f"{cpu_description()}; {args.threads} thread(s) per run, {args.jobs} run(s) at a time", flush=True)
    runs = [(lever, seed) for lever in args.levers for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(_run, lever, seed, args) for lever, seed in runs]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except SystemExit:  # a run failed (one line): start no more
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            r = results[-1]
            print(f"{r['lever']} seed {r['seed']}: {r['test_accuracy']:.2%} in {r['wall_seconds']:.0f} s", flush=True)
            if args.output:
                with args.output.open("a") as f:
                    f.write(json.dumps(r) + "\n")
    _print_table(results, args.levers, args.seeds)


if __name__ == "__main__":
    main()
