"""`fmnist`: a thin typer layer. It parses flags and calls the library.

Defaults come from fmnist_keras.config, so `--help` shows what really runs.
TensorFlow is imported inside the commands, keeping `--help` fast.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fmnist_keras import __version__
from fmnist_keras.config import MAX_SPARSITY, ExportConfig, TrainConfig
from fmnist_keras.convert import IODType, Quantize
from fmnist_keras.errors import FmnistError
from fmnist_keras.quiet import import_tensorflow_quietly

# Silence TensorFlow's C++ logging unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAIN = TrainConfig()
EXPORT = ExportConfig()
DEFAULT_OUTPUT = Path("export")

app = typer.Typer(
    help="Train the article's Fashion-MNIST CNN, export it to verified TFLite, and check it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def _fail(error: FmnistError) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(error.exit_code)


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
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = TRAIN.epochs,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per training step.")] = TRAIN.batch_size,
    learning_rate: Annotated[
        float, typer.Option(min=1e-8, help="Peak Adam learning rate (cosine decay to 0).")
    ] = TRAIN.learning_rate,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="Decoupled weight decay of Adam (0: none).")] = (
        TRAIN.weight_decay
    ),
    warmup_epochs: Annotated[int, typer.Option(min=0, help="Epochs of linear learning-rate warm-up.")] = (
        TRAIN.warmup_epochs
    ),
    label_smoothing: Annotated[float, typer.Option(min=0.0, max=0.5, help="Label smoothing of the loss.")] = (
        TRAIN.label_smoothing
    ),
    augment: Annotated[bool, typer.Option(help="Random flips and shifts of training images.")] = TRAIN.augment,
    shift_pixels: Annotated[int, typer.Option(min=0, max=8, help="Largest random shift in pixels (0: flips only).")] = (
        TRAIN.shift_pixels
    ),
    validation_split: Annotated[
        float, typer.Option(min=0.01, max=0.5, help="Fraction of training images held out for validation.")
    ] = TRAIN.validation_split,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives the same numbers on CPU.")] = (
        TRAIN.seed
    ),
    max_train_images: Annotated[
        int | None, typer.Option(min=1, help="Train on the first N training images only (quick experiments).")
    ] = TRAIN.max_train_images,
    data_dir: DataDirOption = None,
    output: Annotated[Path, typer.Option(help="Folder for model.keras, metrics.json and the logs.")] = DEFAULT_OUTPUT,
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
        validation_split=validation_split,
        seed=seed,
        max_train_images=max_train_images,
    )
    import_tensorflow_quietly()
    from fmnist_keras.train import train_and_evaluate

    try:
        metrics = train_and_evaluate(
            config, output, data_dir=data_dir, overwrite=overwrite, verbose=1 if sys.stdout.isatty() else 2
        )
    except FmnistError as error:
        raise _fail(error) from None
    typer.echo(
        f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) on "
        f"{metrics['num_test_images']:,} images | best val {metrics['best_val_accuracy']:.2%} | "
        f"{metrics['epochs_run']} epochs in {metrics['wall_seconds']:.0f} s | wrote {output / 'model.keras'}"
    )


@app.command()
def export(
    model: Annotated[
        Path, typer.Option(help="Trained model to export (loaded in Keras safe mode).", exists=True, dir_okay=False)
    ] = DEFAULT_OUTPUT / "model.keras",
    quantize: Annotated[Quantize, typer.Option(help="Extra quantized .tflite to write beside the float32 one.")] = (
        Quantize.none
    ),
    io: Annotated[
        IODType, typer.Option(help="Input/output type of the int8 model (int8: microcontrollers, uint8: raw bytes).")
    ] = IODType.int8,
    output: Annotated[Path, typer.Option(help="Folder the verified artifacts are published to.", file_okay=False)] = (
        DEFAULT_OUTPUT
    ),
    calibration_samples: Annotated[
        int, typer.Option(min=1, max=60_000, help="Training images (stratified) that calibrate int8 ranges.")
    ] = EXPORT.calibration_samples,
    max_accuracy_drop: Annotated[
        float, typer.Option(min=0.0, help="Largest accuracy loss of a quantized file, in points, before failing.")
    ] = EXPORT.max_accuracy_drop,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the calibration sample.")] = EXPORT.seed,
    qat: Annotated[
        bool, typer.Option("--qat", help="Also fine-tune with quantization-aware training (tfmot); needs int8.")
    ] = False,
    qat_epochs: Annotated[int, typer.Option(min=1, help="Epochs of quantization-aware fine-tuning.")] = (
        EXPORT.qat_epochs
    ),
    sparsity: Annotated[
        float | None,
        typer.Option(min=0.0, max=MAX_SPARSITY, help="Also export a magnitude-pruned int8 model with this sparsity."),
    ] = None,
    prune_epochs: Annotated[int, typer.Option(min=1, help="Epochs of pruning fine-tuning.")] = EXPORT.prune_epochs,
    data_dir: DataDirOption = None,
) -> None:
    """Export SavedModel and TFLite, verify each on all 10,000 test images, publish only if all pass."""
    if io is not IODType.int8 and quantize is not Quantize.int8:
        raise typer.BadParameter("--io applies to --quantize int8 only", param_hint="--io")
    if (qat or sparsity is not None) and quantize is not Quantize.int8:
        raise typer.BadParameter(
            "QAT and pruning produce full-integer models: add --quantize int8", param_hint="--qat/--sparsity"
        )
    if sparsity == 0:
        raise typer.BadParameter(f"must be in (0, {MAX_SPARSITY}]", param_hint="--sparsity")
    config = dataclasses.replace(
        EXPORT,
        calibration_samples=calibration_samples,
        max_accuracy_drop=max_accuracy_drop,
        seed=seed,
        qat_epochs=qat_epochs,
        prune_epochs=prune_epochs,
    )
    command = (
        f"fmnist export --model {model} --quantize {quantize.value} --io {io.value} --output {output} "
        f"--calibration-samples {calibration_samples} --max-accuracy-drop {max_accuracy_drop:g} --seed {seed}"
        + (f" --qat --qat-epochs {qat_epochs}" if qat else "")
        + (f" --sparsity {sparsity:g} --prune-epochs {prune_epochs}" if sparsity is not None else "")
        + (f" --data-dir {data_dir}" if data_dir else "")
    )
    import_tensorflow_quietly()
    from fmnist_keras.export import export_and_validate
    from fmnist_keras.report import terminal_summary

    try:
        report = export_and_validate(
            model,
            output,
            quantize=quantize,
            io=io,
            config=config,
            data_dir=data_dir,
            qat=qat,
            sparsity=sparsity,
            command=command,
            log=typer.echo,
        )
    except FmnistError as error:
        if getattr(error, "report", None):
            typer.echo(terminal_summary(error.report))
        raise _fail(error) from None
    typer.echo(terminal_summary(report))
    typer.echo(f"published to {output}/ (report.md, MODEL_CARD.md, report.json)")


@app.command()
def info(data_dir: DataDirOption = None) -> None:
    """Show the model, library versions, devices and where the data was found."""
    import_tensorflow_quietly()
    from fmnist_keras.info import describe

    typer.echo(describe(data_dir))


def main() -> None:
    app()
