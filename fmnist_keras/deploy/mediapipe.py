"""`fmnist export --quantize int8 --target mediapipe`: the file MediaPipe Tasks'
ImageClassifier takes, with its class names inside, proven by that client.

The ImageClassifier takes only 3- or 4-channel uint8/float32 images, no int8
output, and reads class names only from TFLite metadata. So this file:

- takes 1x28x28x3 **uint8 RGB**, the pixel bytes as they are (scale 1, zero point 0);
- turns RGB into grey with ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B: the formula
  of Pillow's `convert("L")`, which `fmnist predict` uses, and for grey pictures
  (R = G = B, as every Fashion-MNIST image replicated to RGB) exactly the identity,
  so the network sees its training data. The luma is folded into conv1's kernel
  (conv1(luma(x)) = conv1 with kernel W x luma, exact in float): no extra op;
- is the trained network, then softmax: probabilities out as uint8 (scale 1/256);
- is full-integer inside, builtin ops only, batch 1.

Metadata is written with MediaPipe's own metadata writer and its generated
flatbuffers schema (maintained with the client that reads it; tflite-support is
frozen and has no wheels for Python 3.12+). mediapipe 1.2.3's wheel lacks one
compiled module the writer imports, `_pywrap_metadata_version`, used only to
compute the metadata's minimum parser version; `_min_parser_version` below
stands in for it, following MediaPipe's metadata_version.cc rule by rule.
mediapipe is imported inside these functions only: it is an optional extra.
"""

from __future__ import annotations

# Keras, MediaPipe are imported inside the functions that need them: importing this module (and
# `fmnist --help`) stays fast.
import gc
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np

from fmnist_keras import output_files as out
from fmnist_keras.compat.mediapipe import CHECKED_ON as MEDIAPIPE_CHECKED_ON
from fmnist_keras.compat.mediapipe import metadata_writers, set_general_metadata
from fmnist_keras.contract import CLASS_NAMES, LUMA, RGB_SHAPE, SIDE, as_rgb
from fmnist_keras.errors import FmnistError, MissingRuntime, first_line
from fmnist_keras.export.converters import IODType, Quantize, to_tflite
from fmnist_keras.export.gate import compare_classes
from fmnist_keras.export.op_checks import deployability_problems
from fmnist_keras.export.variants import gzip_size
from fmnist_keras.runtimes.backends import io_details
from fmnist_keras.runtimes.tflite_file import op_names
from fmnist_keras.system import optional
from fmnist_keras.system.native_logs import native_stderr_silenced

MEDIAPIPE_FILE = out.MEDIAPIPE
# The one version whose internals compat.mediapipe uses: `--target mediapipe` requires it.
MEDIAPIPE_VERSION = MEDIAPIPE_CHECKED_ON
RUNTIME = f"MediaPipe Tasks ImageClassifier (mediapipe {MEDIAPIPE_VERSION})"
BIG_SIDE = 10 * SIDE  # a picture MediaPipe must resize itself, 10x the model's input


def rgb_classifier(model):
    """The trained network taking 28x28 RGB (0..255) and returning softmax probabilities.

    Shares every trained layer but conv1, whose kernel takes three channels: W x luma.
    """
    import keras

    pixels = keras.Input(RGB_SHAPE, batch_size=1, name="pixels")
    x = model.get_layer("rescale")(pixels)
    conv1 = model.get_layer("conv1")
    rgb_conv1 = keras.layers.Conv2D(conv1.filters, conv1.kernel_size, padding=conv1.padding, name="conv1_rgb")
    x = rgb_conv1(x)
    for name in ("bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2", "flatten", "logits"):
        x = model.get_layer(name)(x)
    probabilities = keras.layers.Softmax(name="probabilities")(x)
    kernel, bias = conv1.get_weights()
    rgb_conv1.set_weights([kernel * np.asarray(LUMA, dtype=np.float32)[None, None, :, None], bias])
    return keras.Model(pixels, probabilities, name="fmnist_cnn_rgb")


def to_mediapipe_tflite(model, representative: np.ndarray, labels: list[str], version: str) -> bytes:
    """The MediaPipe-ready .tflite bytes: full-integer uint8 RGB in, uint8 probabilities out, metadata in."""

    plain = to_tflite(rgb_classifier(model), Quantize.int8, IODType.uint8, as_rgb(representative), "probabilities")
    return with_metadata(plain, labels, version)


class _ParserVersion:
    """MediaPipe's metadata_version.cc, rule by rule: each field in use raises the lowest
    metadata parser version that understands the file."""

    def __init__(self):
        from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

        self.fb, self.found = fb, [(1, 0, 0)]
        self.file_types = {fb.AssociatedFileType.VOCABULARY: (1, 0, 1),
                           fb.AssociatedFileType.SCANN_INDEX_FILE: (1, 4, 0)}  # fmt: skip
        self.unit_types = {fb.ProcessUnitOptions.BertTokenizerOptions: (1, 1, 0),
                           fb.ProcessUnitOptions.SentencePieceTokenizerOptions: (1, 1, 0),
                           fb.ProcessUnitOptions.RegexTokenizerOptions: (1, 2, 1)}  # fmt: skip

    def files(self, table) -> None:
        for i in range(table.AssociatedFilesLength()):
            associated = table.AssociatedFiles(i)
            self.found.append(self.file_types.get(associated.Type(), (1, 0, 0)))
            self.found.append((1, 4, 1) if associated.Version() is not None else (1, 0, 0))

    def units(self, table, count_name: str, getter: str) -> None:
        for i in range(getattr(table, count_name)()):
            self.found.append(self.unit_types.get(getattr(table, getter)(i).OptionsType(), (1, 0, 0)))

    def tensor(self, meta) -> None:
        self.files(meta)
        self.units(meta, "ProcessUnitsLength", "ProcessUnits")
        content = meta.Content()
        if content is not None and content.ContentPropertiesType() == self.fb.ContentProperties.AudioProperties:
            self.found.append((1, 3, 0))

    def subgraph(self, graph) -> None:
        for i in range(graph.InputTensorMetadataLength()):
            self.tensor(graph.InputTensorMetadata(i))
        for i in range(graph.OutputTensorMetadataLength()):
            self.tensor(graph.OutputTensorMetadata(i))
        self.files(graph)
        for side in ("Input", "Output"):
            if not getattr(graph, f"{side}ProcessUnitsIsNone")():
                self.found.append((1, 1, 0))
                self.units(graph, f"{side}ProcessUnitsLength", f"{side}ProcessUnits")
            if not getattr(graph, f"{side}TensorGroupsIsNone")():
                self.found.append((1, 2, 0))
        if not graph.CustomMetadataIsNone():
            self.found.append((1, 5, 0))


def _min_parser_version(metadata_buffer: bytes) -> str:
    """The lowest metadata parser that understands every field used (MediaPipe's metadata_version.cc)."""
    rules = _ParserVersion()
    root = rules.fb.ModelMetadata.GetRootAs(metadata_buffer, 0)
    for s in range(root.SubgraphMetadataLength()):
        rules.subgraph(root.SubgraphMetadata(s))
    rules.files(root)
    return ".".join(map(str, max(rules.found)))


def with_metadata(model_bytes: bytes, labels: list[str], version: str) -> bytes:
    """Embed name, description, version, author/license, the RGB input and the labelled output."""

    metadata_info, metadata_writer = metadata_writers(_min_parser_version)
    writer = metadata_writer.MetadataWriter(bytearray(model_bytes))
    writer.add_image_input(norm_mean=[0.0], norm_std=[1.0])  # raw bytes: the network rescales itself
    writer.add_classification_output(
        metadata_writer.Labels().add(labels),
        name="probabilities",
        description="Softmax probability of each Fashion-MNIST class (uint8, scale 1/256).",
    )
    general = metadata_info.GeneralMd(
        name="fmnist-keras Fashion-MNIST classifier",
        version=version,
        description='The CNN of "Convolutional Neural Networks, Explained", trained on Fashion-MNIST: one '
        "28x28 RGB picture (grey in, light item on dark) in, the probability of each of 10 classes out.",
        author="fmnist-keras",
        licenses="Apache-2.0",
    )
    set_general_metadata(writer, general)
    model_with_metadata, _ = writer.populate()
    # The writer removes its temporary folder in __del__, which fails (a traceback on stderr)
    # if it first runs at interpreter exit; the writer sits in a reference cycle, so collect it now.
    del writer
    gc.collect()
    return bytes(model_with_metadata)


def read_metadata(model_bytes: bytes) -> dict:
    """What the file's metadata says (name, version, author, license, labels), read back with MediaPipe's schema."""

    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.Model.GetRootAs(model_bytes, 0)
    buffer = next(
        model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
        for i in range(model.MetadataLength())
        if model.Metadata(i).Name() == b"TFLITE_METADATA"
    )
    meta = fb.ModelMetadata.GetRootAs(buffer, 0)
    output = meta.SubgraphMetadata(0).OutputTensorMetadata(0)
    label_file = output.AssociatedFiles(0)
    with zipfile.ZipFile(BytesIO(model_bytes)) as archive:  # associated files ride in a zip appended to the model
        labels = archive.read(label_file.Name().decode()).decode().splitlines()
    return {
        "name": meta.Name().decode(),
        "version": meta.Version().decode(),
        "author": meta.Author().decode(),
        "license": meta.License().decode(),
        "min_parser_version": meta.MinParserVersion().decode(),
        "labels_file_type": label_file.Type(),
        "labels": labels,
    }


def classify(model_bytes: bytes, images: np.ndarray, big_index: int = 0) -> dict:
    """Run the real MediaPipe ImageClassifier on every grey image (given as 28x28 SRGB) and on
    image `big_index` scaled to BIG_SIDE x BIG_SIDE, which MediaPipe resizes itself."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:  # a library caller that skipped system.optional.require
        problem = optional.RUNTIMES["mediapipe"].problem("--target mediapipe")
        raise MissingRuntime(problem or f"mediapipe does not import ({first_line(exc)})") from None

    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_buffer=model_bytes), max_results=1)
    indices, names = [], []
    with native_stderr_silenced(), vision.ImageClassifier.create_from_options(options) as classifier:
        for rgb in as_rgb(images):
            top = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)).classifications[0]
            indices.append(top.categories[0].index)
            names.append(top.categories[0].category_name)
        scale = BIG_SIDE // SIDE
        big = np.ascontiguousarray(as_rgb(images[big_index : big_index + 1])[0].repeat(scale, 0).repeat(scale, 1))
        big_top = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=big)).classifications[0]
    return {
        "predicted": np.asarray(indices),
        "names": names,
        "big": (big_top.categories[0].index, big_top.categories[0].category_name),
    }


def stage_mediapipe(model, representative: np.ndarray, staged: Path, ref, version: str) -> dict:
    """Write the MediaPipe file into `staged` and verify it with the real client against `ref`
    (an export.gate.Reference); return its report row."""
    model_bytes = to_mediapipe_tflite(model, representative, list(CLASS_NAMES), version)
    (staged / MEDIAPIPE_FILE).write_bytes(model_bytes)
    return mediapipe_entry(model_bytes, ref)


def _file_facts(model_bytes: bytes) -> dict:

    return {"name": MEDIAPIPE_FILE, "format": "tflite", "quantize": "int8", "method": "ptq", "runtime": RUNTIME,
            "output": "probabilities", "size_bytes": len(model_bytes), "gzip_bytes": gzip_size(model_bytes),
            "max_abs_logit_diff": None, "nonfinite_logits": 0,  # it returns probabilities, not logits
            "ops": op_names(model_bytes), "io": io_details(model_bytes)}  # fmt: skip


def mediapipe_entry(model_bytes: bytes, ref) -> dict:
    """Verify the file with the real client and build its report row; every check failed is a failure."""

    expected, labels = ref.predicted, ref.labels
    big_index = int(np.flatnonzero(expected == labels)[0])  # a picture the float model gets right
    entry = _file_facts(model_bytes)
    failures = deployability_problems(model_bytes, full_integer=True)
    try:
        result = classify(model_bytes, ref.images, big_index)
    except FmnistError:
        raise
    except Exception as exc:  # noqa: BLE001 - MediaPipe raises its own types, with the reason
        failures.append(f"MediaPipe rejected the file: {first_line(exc)}")
        nothing = np.full_like(expected, -1)  # no class for any image
        return {**entry, **compare_classes(nothing, expected, labels), "failures": failures}
    metrics = compare_classes(result["predicted"], expected, labels)
    failures += ref.failures({**entry, **metrics}, exact=False)
    named = _name_failures(result, labels, big_index, failures)
    return {**entry, **metrics, "named_results": named, "failures": failures,
            "big_picture": {"test_image": big_index, "side": BIG_SIDE, "category_name": result["big"][1]}}  # fmt: skip


def _name_failures(result: dict, labels: np.ndarray, big_index: int, failures: list[str]) -> int:
    """How many results carry their class's own name; wrong names and a wrong big picture are failures."""
    predicted = result["predicted"]
    wrong_names = sum(name != CLASS_NAMES[i] for i, name in zip(predicted, result["names"], strict=True))
    if wrong_names:
        failures.append(f"{wrong_names:,} results carry a category_name that is not their class's name")
    big_class, big_name = result["big"]
    if big_class != labels[big_index] or big_name != CLASS_NAMES[labels[big_index]]:
        failures.append(f"test image {big_index} scaled to {BIG_SIDE}x{BIG_SIDE} came back as {big_name!r}, "
                        f"not {CLASS_NAMES[labels[big_index]]!r}")  # fmt: skip
    return len(predicted) - wrong_names
