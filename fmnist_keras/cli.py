"""`fmnist`: a thin typer layer. It parses flags and calls the library.

Paths are checked by the library, not by typer's `exists=True`: its messages say
what to do ("train one with `fmnist train`"), and typer's box would fire first.

Defaults come from fmnist_keras.config, so `--help` shows what really runs.
TensorFlow is imported inside the commands, keeping `--help` fast.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fmnist_keras import __version__
from fmnist_keras.config import (
    CLUSTER_TIMEOUT_SECONDS,
    MAX_CLUSTERS,
    MAX_SEED,
    MAX_SPARSITY,
    MIN_CLUSTERS,
    ExportConfig,
    TrainConfig,
)
from fmnist_keras.data.pictures import Invert
from fmnist_keras.errors import FmnistError, UsageError, VerificationFailed
from fmnist_keras.export.converters import IODType, Quantize, Target
from fmnist_keras.export.request import ExportRequest
from fmnist_keras.system import interrupts
from fmnist_keras.system.native_logs import import_tensorflow_quietly
from fmnist_keras.training.distribute import Strategy
from fmnist_keras.training.precision import Precision

# Silence TensorFlow's C++ logging unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRAIN = TrainConfig()
DEFAULT_STRATEGY = Strategy(TRAIN.strategy)
DEFAULT_PRECISION = Precision(TRAIN.precision)
EXPORT = ExportConfig()
DEFAULT_OUTPUT = Path("export")

app = typer.Typer(
    help="Train the article's Fashion-MNIST CNN, export it to verified TFLite, and check it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich tables cut long option names (--validation-spl…) at 80 columns.
    rich_markup_mode=None,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder with the four Fashion-MNIST IDX files (.gz or raw). "
        "Default: $FMNIST_DATA, ~/.keras/datasets/fashion-mnist, /usr/share/datasets/fashion-mnist, then download.",
        file_okay=False,
    ),
]


def _path(text: str) -> Path:
    """A path option's parser: an empty one would quietly mean the current folder."""
    if not str(text).strip():
        raise typer.BadParameter("is empty; name a file or folder")
    return Path(text)


def _fail(error: FmnistError) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(error.exit_code)


def _finite(value: float) -> float:
    """inf passes typer's ranges, and would reach strict JSON (metrics, reports) as a traceback."""
    if not math.isfinite(value):
        raise typer.BadParameter("must be a finite number")
    return value


def _interrupted(what_now: str, exc: BaseException) -> typer.Exit:
    """The one line for a Ctrl-C (`exc` caught as interrupts.CAUGHT); anything else goes on up."""
    if not interrupts.is_interrupt(exc):
        raise exc
    typer.secho(f"interrupted: {what_now}", err=True, fg=typer.colors.RED)
    return typer.Exit(130)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fmnist-keras {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Train the article's Fashion-MNIST CNN, export it to verified TFLite, and check it."""


@app.command()
def train(
    epochs: Annotated[int, typer.Option(min=1, max=10_000, help="Training epochs.")] = TRAIN.epochs,
    batch_size: Annotated[int, typer.Option(min=1, max=60_000, help="Images per training step.")] = TRAIN.batch_size,
    learning_rate: Annotated[
        float, typer.Option(min=1e-8, callback=_finite, help="Peak Adam learning rate (cosine decay to 0).")
    ] = TRAIN.learning_rate,
    weight_decay: Annotated[
        float, typer.Option(min=0.0, callback=_finite, help="Decoupled weight decay of Adam (0: none).")
    ] = (TRAIN.weight_decay),
    warmup_epochs: Annotated[int, typer.Option(min=0, help="Epochs of linear learning-rate warm-up.")] = (
        TRAIN.warmup_epochs
    ),
    label_smoothing: Annotated[float, typer.Option(min=0.0, max=0.5, help="Label smoothing of the loss.")] = (
        TRAIN.label_smoothing
    ),
    augment: Annotated[bool, typer.Option(help="Augment training images (--shift-pixels, --flip).")] = TRAIN.augment,
    shift_pixels: Annotated[int, typer.Option(min=0, max=8, help="Largest random shift in pixels (0: none).")] = (
        TRAIN.shift_pixels
    ),
    flip: Annotated[bool, typer.Option(help="Random horizontal flips (off: the shoes all face left).")] = TRAIN.flip,
    clean_epochs: Annotated[
        int, typer.Option(min=0, max=10_000, help="Train the last N epochs on images as they are (no augmentation).")
    ] = TRAIN.clean_epochs,
    validation_split: Annotated[
        float, typer.Option(min=0.01, max=0.5, help="Fraction of training images held out for validation.")
    ] = TRAIN.validation_split,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Random seed; the same seed gives the same numbers on CPU.")
    ] = TRAIN.seed,
    max_train_images: Annotated[
        int | None, typer.Option(min=1, help="Train on the first N training images only (quick experiments).")
    ] = TRAIN.max_train_images,
    strategy: Annotated[
        Strategy,
        typer.Option(
            help="tf.distribute strategy. auto: mirrored on more than one GPU, else default. multi-worker reads "
            "the cluster from $TF_CONFIG. --batch-size and --learning-rate are per replica (linear scaling)."
        ),
    ] = DEFAULT_STRATEGY,
    precision: Annotated[
        Precision,
        typer.Option(
            help="Compute dtype. mixed: bfloat16 on CPU, float16 on GPU. auto: bfloat16 on CPUs with AMX (about "
            "1.5x faster there), else float32. Weights and the saved model are float32 either way."
        ),
    ] = DEFAULT_PRECISION,
    cluster_timeout: Annotated[
        int, typer.Option(min=1, max=86_400, help="Seconds a multi-worker process waits for all workers to join.")
    ] = CLUSTER_TIMEOUT_SECONDS,
    data_dir: DataDirOption = None,
    output: Annotated[
        Path, typer.Option(parser=_path, help="Folder for model.keras, metrics.json and the logs.")
    ] = DEFAULT_OUTPUT,
    overwrite: Annotated[bool, typer.Option(help="Replace a finished run already in --output.")] = False,
) -> None:
    """Train the article's CNN on Fashion-MNIST and evaluate it once on the test set."""
    config = dataclasses.replace(
        TRAIN,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing,
        augment=augment,
        shift_pixels=shift_pixels,
        flip=flip,
        clean_epochs=clean_epochs,
        validation_split=validation_split,
        seed=seed,
        max_train_images=max_train_images,
        strategy=strategy.value,
        precision=precision.value,
    )
    import_tensorflow_quietly()
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    context = RunContext(data_dir=data_dir, overwrite=overwrite, cluster_timeout=cluster_timeout,
                         tf_config=os.environ.get("TF_CONFIG"),  # the CLI reads it; the library takes the text
                         verbose=1 if sys.stdout.isatty() else 2, log=typer.echo)  # fmt: skip
    try:
        metrics = train_and_evaluate(config, output, context)
    except FmnistError as error:
        raise _fail(error) from None
    except interrupts.CAUGHT as exc:
        resume = f"run the same command again to resume from the last completed epoch in {output}"
        raise _interrupted(resume, exc) from None
    if not metrics["chief"]:
        typer.echo(f"{metrics['task']} trained {metrics['epochs_run']} epochs; the chief writes the model")
        return
    typer.echo(
        f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) on "
        f"{metrics['num_test_images']:,} images | best val {metrics['best_val_accuracy']:.2%} | "
        f"{metrics['epochs_run']} epochs in {metrics['wall_seconds']:.0f} s | wrote {output / 'model.keras'}"
    )


@app.command()
def export(
    model: Annotated[
        Path, typer.Option(parser=_path, help="Trained model to export (loaded in Keras safe mode).")
    ] = DEFAULT_OUTPUT
    / "model.keras",
    quantize: Annotated[Quantize, typer.Option(help="Extra quantized .tflite to write beside the float32 one.")] = (
        Quantize.none
    ),
    io: Annotated[
        IODType | None,
        typer.Option(
            help="Input/output type of the int8 model (int8: microcontrollers, uint8: raw bytes). [default: int8]"
        ),
    ] = None,
    target: Annotated[
        list[Target],
        typer.Option(
            help="Repeatable. mediapipe: also write model_mediapipe.tflite for MediaPipe Tasks' ImageClassifier "
            "(uint8 RGB in, probabilities out, labels in its metadata), verified by that client. web: also write "
            "web/, a page that classifies pictures in the browser with that file, verified in Chromium. Both "
            "need --quantize int8."
        ),
    ] = [Target.tflite],  # noqa: B006 - typer reads the default, never mutates it
    output: Annotated[Path, typer.Option(parser=_path, help="Folder the verified artifacts are published to.")] = (
        DEFAULT_OUTPUT
    ),
    calibration_samples: Annotated[
        int, typer.Option(min=1, max=60_000, help="Training images (stratified) that calibrate int8 ranges.")
    ] = EXPORT.calibration_samples,
    max_accuracy_drop: Annotated[
        float,
        typer.Option(min=0.0, max=100.0, help="Largest accuracy loss of a quantized file, in points, before failing."),
    ] = EXPORT.max_accuracy_drop,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the calibration sample.")] = EXPORT.seed,
    qat: Annotated[
        bool, typer.Option("--qat", help="Also fine-tune with quantization-aware training (tfmot); needs int8.")
    ] = False,
    qat_epochs: Annotated[int, typer.Option(min=1, max=1_000, help="Epochs of quantization-aware fine-tuning.")] = (
        EXPORT.qat_epochs
    ),
    sparsity: Annotated[
        float | None,
        typer.Option(min=0.0, max=MAX_SPARSITY, help="Also export a magnitude-pruned int8 model with this sparsity."),
    ] = None,
    prune_epochs: Annotated[int, typer.Option(min=1, max=1_000, help="Epochs of pruning fine-tuning.")] = (
        EXPORT.prune_epochs
    ),
    clusters: Annotated[
        int | None,
        typer.Option(
            min=MIN_CLUSTERS,
            max=MAX_CLUSTERS,
            help="Also export an int8 model whose kernels hold only this many distinct values (tfmot weight "
            "clustering; of the pruned model with --sparsity). Compresses far better with gzip.",
        ),
    ] = None,
    cluster_epochs: Annotated[int, typer.Option(min=1, max=1_000, help="Epochs of clustering fine-tuning.")] = (
        EXPORT.cluster_epochs
    ),
    c_array: Annotated[
        str | None,
        typer.Option(help="The int8 file whose bytes model_int8.cc holds, e.g. model_int8_qat.tflite. "
                     "[default: the plain model_int8.tflite]"),  # fmt: skip
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Export SavedModel and TFLite, verify each on all 10,000 test images, publish only if all pass."""
    config = dataclasses.replace(
        EXPORT,
        calibration_samples=calibration_samples,
        max_accuracy_drop=max_accuracy_drop,
        seed=seed,
        qat_epochs=qat_epochs,
        prune_epochs=prune_epochs,
        cluster_epochs=cluster_epochs,
    )
    try:
        request = ExportRequest(model, output, quantize=quantize, io=io, targets=frozenset(target), config=config,
                                qat=qat, sparsity=sparsity, clusters=clusters, data_dir=data_dir,
                                c_array=c_array)  # fmt: skip
    except UsageError as error:
        raise typer.BadParameter(str(error), param_hint=error.param) from None
    from fmnist_keras.commands.export import check_runtimes, export_and_validate

    try:
        check_runtimes(request)  # before TensorFlow loads: a missing runtime is refused in a second
    except FmnistError as error:
        raise _fail(error) from None
    import_tensorflow_quietly()
    from fmnist_keras.export.report import terminal_summary

    try:
        report = export_and_validate(request, log=typer.echo)
    except FmnistError as error:
        if isinstance(error, VerificationFailed) and error.report:
            typer.echo(terminal_summary(error.report))
        raise _fail(error) from None
    except interrupts.CAUGHT as exc:
        raise _interrupted(f"nothing was published; {output} is as it was", exc) from None
    typer.echo(terminal_summary(report))
    typer.echo(f"published to {output}/ (report.md, MODEL_CARD.md, report.json)")


@app.command()
def evaluate(
    artifacts: Annotated[
        list[Path],
        typer.Argument(help="A .keras file, a .tflite file or a SavedModel folder; give two to compare them."),
    ],
    output: Annotated[
        Path, typer.Option(parser=_path, help="JSON report; the confusion-matrix PNG is written beside it.")
    ] = DEFAULT_OUTPUT / "evaluation.json",
    gallery: Annotated[bool, typer.Option(help="Also write a PNG grid of misclassified test images.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Accuracy, per-class precision/recall/F1 and confusions of a model on all 10,000 test images."""
    if len(artifacts) > 2:
        raise typer.BadParameter("give one artifact, or two to compare", param_hint="ARTIFACTS")
    import_tensorflow_quietly()
    from fmnist_keras.commands.evaluate import evaluate_artifacts, metrics_table

    try:
        report = evaluate_artifacts(artifacts, output, data_dir=data_dir, gallery=gallery)
    except FmnistError as error:
        raise _fail(error) from None
    except interrupts.CAUGHT as exc:
        raise _interrupted(f"nothing was written; {output} is as it was", exc) from None
    for result in report["results"]:
        typer.echo(f"{result['artifact']} ({result['kind']}): accuracy {result['accuracy']:.2%} "
                   f"on {result['images']:,} test images")  # fmt: skip
        typer.echo(metrics_table(result))
    if "comparison" in report:
        c = report["comparison"]
        typer.echo(
            f"agreement {c['agreement']:.2%}: {c['disagreements']} disagreements; only the first is right on "
            f"{c['first_right_second_wrong']}, only the second on {c['second_right_first_wrong']}"
        )
    typer.echo(f"wrote {output} and {report['confusion_png']}" + (f" and {report['gallery_png']}" if gallery else ""))


@app.command()
def predict(
    artifact: Annotated[Path, typer.Argument(help="A .keras file, a .tflite file or a SavedModel folder.")],
    images: Annotated[list[Path], typer.Argument(help="PNG/JPEG/BMP/GIF pictures, or .npy arrays of 28x28 uint8.")],
    invert: Annotated[
        Invert, typer.Option(help="Invert dark-on-light pictures; auto decides from the border pixels.")
    ] = Invert.auto,
    top_k: Annotated[int, typer.Option(min=1, max=10, help="How many labels to print per picture.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Classify your own pictures (same preprocessing for every artifact type)."""
    import_tensorflow_quietly()
    from fmnist_keras.commands.predict import predict_files

    try:
        results, errors = predict_files(artifact, images, invert=invert, top_k=top_k)
    except FmnistError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(json.dumps({"predictions": results, "errors": errors}, indent=2))
    else:
        for r in results:
            labels = ", ".join(f"{p['label']} {p['probability']:.1%}" for p in r["top"])
            typer.echo(f"{r['input']}: {labels}")
    for message in errors:
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    if errors:
        raise typer.Exit(1)


@app.command()
def bench(
    artifacts: Annotated[
        list[Path] | None, typer.Argument(help="Artifacts to time; default: every model in export/.")
    ] = None,
    threads: Annotated[
        list[int], typer.Option(min=1, max=256, help="Thread counts to measure (repeat the option).")
    ] = [1, 2],  # noqa: B006
    runs: Annotated[
        int,
        typer.Option(min=10, max=1_000_000, help="Timed batch-1 runs per measurement, after warm-up "
                     "(at most a million: about a minute per file and thread count)."),  # fmt: skip
    ] = 1000,
    output: Annotated[Path, typer.Option(parser=_path, help="JSON file for the results.")] = (
        DEFAULT_OUTPUT / "bench.json"
    ),
) -> None:
    """Latency (p50/p90/p99 at batch 1) and throughput of each artifact."""
    from fmnist_keras.commands.bench import bench_and_write, bench_plan

    try:
        paths = bench_plan(artifacts or [], output, DEFAULT_OUTPUT)
    except FmnistError as error:
        raise _fail(error) from None
    try:
        with typer.progressbar(length=len(paths) * len(threads), label="benchmarking", file=sys.stderr) as bar:
            table, failed = bench_and_write(paths, threads, runs, output, progress=lambda *_: bar.update(1))
    except FmnistError as error:
        raise _fail(error) from None
    typer.echo(table)
    typer.echo(f"wrote {output}")
    if failed:
        raise typer.Exit(1)


@app.command()
def info(data_dir: DataDirOption = None) -> None:
    """Show the model, library versions, devices and where the data was found."""
    import_tensorflow_quietly()
    from fmnist_keras.commands.info import describe

    typer.echo(describe(data_dir, tf_config=os.environ.get("TF_CONFIG")))


@app.command()
def serve(
    folder: Annotated[Path, typer.Argument(help="The web folder `fmnist export --target web` wrote.")] = (
        DEFAULT_OUTPUT / "web"
    ),
    port: Annotated[int, typer.Option(min=0, max=65_535, help="Port to listen on (0: any free one).")] = 8000,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. 0.0.0.0 lets a phone on the same network open the page."),
    ] = "127.0.0.1",
) -> None:
    """Serve the web page on this machine (Ctrl-C stops it)."""
    from fmnist_keras.commands.serve import serve_folder

    try:
        serve_folder(folder, host, port, log=typer.echo)
    except FmnistError as error:
        raise _fail(error) from None
    except KeyboardInterrupt:
        typer.echo("stopped")


def main() -> None:
    interrupts.install()  # Ctrl-C and SIGTERM clean up: staging removed, a publish rolled back
    try:
        app()
    except OSError as exc:
        # Raised from many places at once (paths checked by the OS, the terminal we print to):
        # one line for the cases a user can cause, a traceback only for a real bug.
        if exc.errno == errno.ENAMETOOLONG:
            _last_words(f"error: a path is longer than this system allows ({str(exc.filename)[:60]}...); "
                        "use a shorter one")  # fmt: skip
        elif exc.errno in (errno.ENOSPC, errno.EPIPE, errno.EIO):
            _last_words(f"error: cannot write the output ({os.strerror(exc.errno)})")
        else:
            raise
        sys.exit(2 if exc.errno == errno.ENAMETOOLONG else 1)
    finally:
        interrupts.uninstall()


def _last_words(line: str) -> None:
    """An error line on stderr even when stdout is what failed (a full disk behind `> file`)."""
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass
