"""Training: `train_and_evaluate(config, workdir)` is what `fmnist train` runs.

The output folder ends up with model.keras, training_log.csv, metrics.json and
training_curves.png, all published together at the end. While training, the
resumable state lives in `<workdir>/.train_state/`; a killed run started again
with the same options continues from its last completed epoch.
"""

from __future__ import annotations

# h5py, Keras, TensorFlow are imported inside the functions that need them: importing this module
# (and `fmnist --help`) stays fast.
import contextlib
import csv
import errno
import io
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist_keras import output_files as out
from fmnist_keras.compat.keras import backup_and_restore, fit_under_multi_worker
from fmnist_keras.config import CLUSTER_TIMEOUT_SECONDS, TrainConfig
from fmnist_keras.data.idx import Split, load_data, training_split
from fmnist_keras.errors import OutputError, TrainingDiverged, first_line
from fmnist_keras.metrics import evaluate_logits
from fmnist_keras.model.cnn import build_model, build_training_model
from fmnist_keras.runtimes.backends import keras_logits
from fmnist_keras.runtimes.keras_file import file_sha256
from fmnist_keras.system import cpu, onednn, versions
from fmnist_keras.system.figures import plot_training_curves
from fmnist_keras.system.publish import (
    ensure_writable_dir,
    folder_lock,
    full_disk_reported,
    publish,
    staging_dir,
    write_json,
)
from fmnist_keras.training import precision
from fmnist_keras.training.distribute import Strategy, create_strategy, parse_tf_config, scaled_learning_rate
from fmnist_keras.training.precision import Precision

STATE_DIR = ".train_state"


def _prepare_state(config: TrainConfig, workdir: Path, context: RunContext, name: str = STATE_DIR) -> Path:
    """Decide between a fresh start, a resume and a refusal; return the state folder.

    `context.overwrite` always starts fresh, whatever state (even a damaged one) is there.
    """
    overwrite, log = context.overwrite, context.log
    state = workdir / name
    saved = state / "config.json"
    if saved.exists() and not overwrite:
        try:
            previous = json.loads(saved.read_text())
        except (OSError, ValueError):
            previous = None
        if not isinstance(previous, dict):
            raise OutputError(f"the interrupted run's {saved} is damaged; pass --overwrite to start over")
        if previous != config.to_dict():
            changed = ", ".join(
                f"{k} {previous.get(k)} -> {v}" for k, v in config.to_dict().items() if previous.get(k) != v
            )
            raise OutputError(
                f"{workdir} holds an interrupted run with other options ({changed}); "
                "rerun with the same options to resume it, or pass --overwrite to start over"
            )
        _check_checkpoint(state / "backup", log)
        log(f"Resuming the interrupted run in {state}")
        return state
    if (workdir / out.METRICS).is_dir():
        raise OutputError(f"{workdir / out.METRICS} is a folder, not a finished run's metrics; "
                          "move it away, or pass --output to train into another folder")  # fmt: skip
    if name == STATE_DIR and (workdir / out.METRICS).exists() and not overwrite:
        raise OutputError(
            f"{workdir} already holds a finished run (metrics.json, model.keras); "
            "pass --overwrite to replace it, or --output to train into another folder"
        )
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    write_json(saved, config.to_dict())
    return state


# Keras BackupAndRestore's files, and the copies its double_checkpoint keeps of the one before.
CHECKPOINTS = (("latest.weights.h5", "training_metadata.json"), ("latest.weights.h5.bkp", "training_metadata.json.bkp"))


def _checkpoint_problem(backup: Path, weights: str, metadata: str) -> str | None:
    """Why a checkpoint cannot be resumed from, or None when every array in it reads back."""
    import h5py

    try:
        epoch = json.loads((backup / metadata).read_text())["epoch"]
        if not isinstance(epoch, int):
            return f"{metadata} holds no epoch"
        with h5py.File(backup / weights, "r") as f:
            f.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except Exception as exc:  # noqa: BLE001 - h5py and json raise many types for damaged files
        return f"{weights}: {first_line(exc)}"
    return None


def _check_checkpoint(backup: Path, log) -> None:
    """Resume from the last good checkpoint (a kill or a full disk can cut the last one short)."""
    if not backup.exists():
        return
    (weights, metadata), (previous_weights, previous_metadata) = CHECKPOINTS
    if not (backup / weights).exists() and not (backup / metadata).exists():
        return  # killed before the first epoch ended: nothing to resume
    problem = _checkpoint_problem(backup, weights, metadata)
    if problem is None:
        return
    previous_ok = (backup / previous_weights).exists() and not _checkpoint_problem(
        backup, previous_weights, previous_metadata
    )
    if previous_ok:
        log(f"note: the last checkpoint is damaged ({problem}); resuming from the one before it")
        shutil.copyfile(backup / previous_weights, backup / weights)
        shutil.copyfile(backup / previous_metadata, backup / metadata)
        return
    raise OutputError(f"the checkpoint in {backup} is damaged ({problem}); pass --overwrite to start over")


def _read_log(path: Path) -> list[dict]:
    """CSV rows, keeping the last row per epoch (a kill between the log write and
    the checkpoint write makes an epoch run twice)."""
    if not path.exists():
        return []
    rows = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            epoch = _complete_row_epoch(row)
            if epoch is not None:
                rows[epoch] = row
    return [rows[e] for e in sorted(rows)]


def _complete_row_epoch(row: dict) -> int | None:
    """The epoch of a complete log row; None for a row that a kill cut short mid-write."""
    if None in row or any(v in (None, "") for v in row.values()):
        return None
    try:
        float(row["val_accuracy"])
        return int(row["epoch"])
    except (KeyError, ValueError):
        return None


def _write_log(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue())


@dataclass(frozen=True)
class RunContext:
    """How a run meets its surroundings: where the data is, whether it may replace a finished
    run, the cluster it belongs to, and where it reports."""

    data_dir: Path | None = None  # None: $FMNIST_DATA, then the usual places
    overwrite: bool = False  # replace a finished run in the output folder
    tf_config: str | None = None  # the cluster's TF_CONFIG text (strategy "multi-worker")
    cluster_timeout: int = CLUSTER_TIMEOUT_SECONDS  # seconds to wait for every worker
    verbose: int | str = "auto"  # Keras's progress output
    log: Callable[[str], None] = print  # where notes go


def train_and_evaluate(config: TrainConfig, workdir: Path, context: RunContext = RunContext()) -> dict:
    """Train the article's CNN with `config`, evaluate once on the test set, write artifacts to `workdir`.

    With `config.strategy` "multi-worker", every worker runs this function with the cluster's
    TF_CONFIG in `context`, and only the chief evaluates and writes artifacts (the others
    return {"chief": False, ...} and leave nothing behind).
    """
    started = time.perf_counter()
    kind = Strategy(config.strategy)
    task = parse_tf_config(context.tf_config) if kind is Strategy.multi_worker else None  # bad TF_CONFIG: first
    dataset = load_data(context.data_dir)  # fail on bad data before touching the output folder
    workdir = ensure_writable_dir(Path(workdir))
    # Other workers keep their own resumable state beside the chief's, removed at the end.
    state_name = STATE_DIR if task is None or task.is_chief else f"{STATE_DIR}-{task.task_type}-{task.task_index}"
    with folder_lock(workdir, state_name.lstrip("."), "fmnist train"), _state_guard(
        state := _prepare_state(config, workdir, context, name=state_name), workdir
    ):
        plan = plan_run(config, context, dataset)
        model, losses = _fit(config, plan, state, context.verbose)
        _raise_if_diverged(model, losses, state, plan.peak_lr)
        distribution = _distribution(plan, task)
        if not plan.placement.is_chief:
            shutil.rmtree(state, ignore_errors=True)
            return {"chief": False, "task": task.name, "epochs_run": len(losses), **distribution}
        trained, rows = _published_copy(model), _read_log(state / "log.csv")
        metrics = {**_test_metrics(trained, rows, dataset), **_run_facts(config, plan, dataset, distribution, started)}
        _publish_run(trained, rows, metrics, workdir)
    shutil.rmtree(state, ignore_errors=True)
    return metrics


@dataclass(frozen=True)
class Plan:
    """Where and how a run trains: devices, compute dtype, data split, batch and schedule sizes."""

    placement: object  # distribute.Placement
    policy: str | None  # mixed-precision policy, None for float32
    split: Split  # training and validation images
    global_batch: int
    peak_lr: float
    steps: int  # per epoch
    warmup: int  # steps


def plan_run(config: TrainConfig, context: RunContext, dataset) -> Plan:
    import keras
    import tensorflow as tf

    from fmnist_keras.data.tf_datasets import steps_per_epoch

    # Same seed, same numbers on CPU: seeded Python/NumPy/TF RNGs plus deterministic kernels.
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    kind, log = Strategy(config.strategy), context.log
    placement = create_strategy(kind, context.tf_config, context.cluster_timeout)  # before any TF op (multi-worker)
    policy = precision.policy_on_this_machine(Precision(config.precision))
    split = training_split(dataset, config.validation_split, config.seed, config.max_train_images)
    global_batch = config.batch_size * placement.replicas
    peak_lr = scaled_learning_rate(config.learning_rate, placement.replicas)
    steps = steps_per_epoch(len(split.x), global_batch)
    warmup = min(config.warmup_epochs * steps, config.epochs * steps - 1)
    for note in placement.notes:
        log(f"note: {note}")
    if kind is not Strategy.default or placement.replicas > 1 or policy:
        log(
            f"{placement.describe()} | global batch {global_batch} = {config.batch_size} x {placement.replicas} | "
            f"peak learning rate {peak_lr:g} = {config.learning_rate:g} x {placement.replicas} "
            f"(linear scaling, {warmup} warm-up steps) | compute dtype {policy or 'float32'}"
        )
    return Plan(placement, policy, split, global_batch, peak_lr, steps, warmup)


def compiled_model(config: TrainConfig, plan: Plan):
    """The article's network with Adam, warm-up then cosine decay, label-smoothed cross-entropy."""
    import keras


    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if plan.warmup else plan.peak_lr,
        decay_steps=config.epochs * plan.steps - plan.warmup,
        warmup_target=plan.peak_lr if plan.warmup else None,
        warmup_steps=plan.warmup,
    )
    optimizer = keras.optimizers.Adam(learning_rate=schedule, weight_decay=config.weight_decay or None)
    if plan.policy == "mixed_float16":  # float16 gradients underflow without loss scaling
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model = build_training_model(plan.policy)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=False,  # XLA is about 2x slower for this model on CPU
        steps_per_execution=_steps_per_execution(plan),
    )
    return model


# Training steps per call into TensorFlow's graph: fewer Python round trips per epoch.
# On a 2-core AVX-512 EPYC, 16 took an epoch at batch 64 from 9.4 s to 8.1-8.5 s.
STEPS_PER_EXECUTION = 16


def _steps_per_execution(plan: Plan) -> int:
    # Keras 3.15's multi-step loop fails under MirroredStrategy (InvalidArgumentError in its
    # while loop), and multi-worker runs through a workaround of ours: one step per call there.
    return STEPS_PER_EXECUTION if plan.placement.replicas == 1 and plan.placement.task is None else 1


def _fit(config: TrainConfig, plan: Plan, state: Path, verbose) -> tuple[object, list[float]]:
    """Train (or resume from the state's checkpoint); returns the model and the losses of the epochs run."""
    import keras

    from fmnist_keras.data.tf_datasets import eval_dataset

    x_val, y_val = plan.split[2:]
    with plan.placement.strategy.scope():
        model = compiled_model(config, plan)
        # The log row is written before the checkpoint: a kill between the two repeats the
        # epoch (and _read_log keeps its last row) instead of losing its row.
        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.CSVLogger(str(state / "log.csv"), append=True),
            _checkpoint_callback(state / "backup"),
        ]
        train_ds = training_batches(config, plan, first_epoch=_completed_epochs(state / "backup"))
        if plan.placement.kind is Strategy.multi_worker:
            _let_fit_run_multi_worker(model)
        history = model.fit(
            train_ds,
            epochs=config.epochs,
            steps_per_epoch=plan.steps,
            validation_data=eval_dataset(x_val, y_val),
            callbacks=callbacks,
            shuffle=False,  # the dataset shuffles itself, reproducibly
            verbose=verbose if plan.placement.is_chief else 0,
        )
    return model, history.history.get("loss", [])


def training_batches(config: TrainConfig, plan: Plan, first_epoch: int = 0):
    """The endless training batches of `fmnist train` from epoch `first_epoch` on: augmented as
    the config asks, the last `clean_epochs` epochs as they are."""
    from fmnist_keras.data.tf_datasets import Augmentation, Batches, training_dataset

    augmented, first = config.augmented_epochs * plan.steps, first_epoch * plan.steps
    batches = Batches(plan.global_batch, config.seed, Augmentation.of(config), augmented, first)
    return training_dataset(plan.split.x, plan.split.y, batches)


def _completed_epochs(backup: Path) -> int:
    """Epochs the checkpoint that fit() resumes from has trained (0 when there is none)."""
    metadata = backup / CHECKPOINTS[0][1]
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0  # checked by _check_checkpoint


def _raise_if_diverged(model, losses: list[float], state: Path, peak_lr: float) -> None:
    loss_blew_up = model.stop_training and not (losses and all(math.isfinite(v) for v in losses))
    if loss_blew_up or not _weights_finite(model):
        shutil.rmtree(state, ignore_errors=True)
        raise TrainingDiverged(
            f"training diverged: the loss became NaN/inf (learning rate {peak_lr:g}); "
            "no model was written; lower --learning-rate and train again"
        )


def _distribution(plan: Plan, task) -> dict:
    placement = plan.placement
    distribution = {
        "strategy": placement.kind.value,
        "replicas": placement.replicas,
        "devices": placement.devices,
        "global_batch_size": plan.global_batch,
        "peak_learning_rate": plan.peak_lr,
        "compute_dtype": plan.policy or "float32",
    }
    if task is not None:
        distribution["num_workers"] = task.num_workers
    return distribution


def _published_copy(model):
    """The published model is a plain float32 copy: no strategy, no mixed-precision layers."""

    trained = build_model()
    trained.set_weights(model.get_weights())
    return trained


def _test_metrics(trained, rows: list[dict], dataset) -> dict:
    """The test set, evaluated once, and the validation curve's best and last points."""

    test = evaluate_logits(keras_logits(trained, dataset.x_test), dataset.y_test.astype(np.int64))
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    return {
        "chief": True,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "best_val_accuracy": float(best["val_accuracy"]),
        "best_val_epoch": int(best["epoch"]) + 1,
        "final_val_accuracy": float(rows[-1]["val_accuracy"]),
        "epochs_run": len(rows),
        "num_params": trained.count_params(),
        "num_test_images": len(dataset.y_test),
    }


def _run_facts(config: TrainConfig, plan: Plan, dataset, distribution: dict, started: float) -> dict:
    """What the run was: its recipe, data, machine, kernels and library versions."""
    return {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu": cpu.cpu_description(),  # what the wall time was measured on
        "onednn": onednn.state(),  # which kernels computed the weights
        "seed": config.seed,
        "num_train_images": len(plan.split.x),
        "num_val_images": len(plan.split.x_val),
        "data_dir": str(dataset.source),
        "distribution": distribution,
        "config": config.to_dict(),
        "versions": versions.library_versions(),
    }


def _publish_run(trained, rows: list[dict], metrics: dict, workdir: Path) -> None:
    """model.keras, the log, the curves and metrics.json as one set; a retrain also retires the
    files exported from the model it replaces."""

    with staging_dir(workdir) as staged:
        trained.save(staged / out.MODEL)
        metrics["model_sha256"] = file_sha256(staged / out.MODEL)  # ties metrics.json to this model file
        _write_log(rows, staged / "training_log.csv")
        plot_training_curves(rows, staged / "training_curves.png")
        write_json(staged / out.METRICS, metrics)
        publish(staged, workdir, list(out.RUN_FILES), replaces=out.exported_files(workdir), whole_folder=True)


@contextlib.contextmanager
def _state_guard(state: Path, workdir: Path):
    """A run that fails before its first checkpoint leaves no state behind (it never
    started), and a full disk gets one line instead of a cascade of tracebacks."""
    resume = "free some space and run the same command to resume, or pass --output elsewhere"
    try:
        with full_disk_reported(workdir, resume):
            yield
    except BaseException:
        if not (state / "backup" / CHECKPOINTS[0][0]).exists():
            shutil.rmtree(state, ignore_errors=True)
        raise


# Room a checkpoint needs (it is about 0.4 MB) before h5py may write it.
CHECKPOINT_ROOM_BYTES = 4 * 1024 * 1024


def _checkpoint_callback(backup: Path):
    """Keras BackupAndRestore that refuses to start a checkpoint on an almost full disk.

    h5py segfaults the whole process when a write fails mid-file, so the check has to
    come first: it raises ENOSPC, which `_state_guard` turns into one line. Kept at
    the end (removed with the state after publishing), so a kill between the last
    epoch and publishing resumes at the end instead of retraining every epoch;
    double_checkpoint keeps the one before, in case a kill cuts the last one short.
    """

    def check_room() -> None:
        backup.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(backup).free
        if free < CHECKPOINT_ROOM_BYTES:
            raise OSError(errno.ENOSPC, f"No space left on device ({free:,} bytes free)", str(backup))

    return backup_and_restore(str(backup), check_room)


def _let_fit_run_multi_worker(model) -> None:
    """Work around Keras 3's fit() under MultiWorkerMirroredStrategy (keras-team/keras#20585).

    Two steps of fit() fail with more than one worker: its symbolic build
    all-reduces a nested sample batch (the collective ops reject the nest), and
    it reduces the scalar logs of each step with axis=0. We build the optimizer
    ourselves and let fit() take the strategy from the enclosing scope (which
    skips the symbolic build), and hand it rank-1 logs. Call inside strategy.scope().
    """
    import tensorflow as tf


    model.optimizer.build(model.trainable_variables)

    def rank1(logs: dict) -> dict:
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}

    fit_under_multi_worker(model, rank1)


def _weights_finite(model) -> bool:
    return all(np.all(np.isfinite(w)) for w in model.get_weights())
