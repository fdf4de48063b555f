"""Human-readable views of an export report: terminal table, report.md, MODEL_CARD.md."""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import io

from fmnist_keras.config import TrainConfig
from fmnist_keras.contract import CLASS_NAMES
from fmnist_keras.system import onednn

_RUNTIMES = {"keras": "Keras", "saved_model": "TensorFlow", "tflite": "LiteRT"}


def _row(a: dict) -> list[str]:
    status = "FAIL" if a["failures"] else "ok"
    gzip_bytes = a.get("gzip_bytes")
    return [
        a["name"],
        a["method"],
        a.get("runtime", _RUNTIMES[a["format"]]).split(" (")[0],
        f"{a['size_bytes'] / 1024:,.1f}",
        f"{gzip_bytes / 1024:,.1f}" if gzip_bytes else "",
        f"{a['accuracy']:.2%}",
        f"{a['accuracy_drop_points']:+.2f}",
        f"{a['agreement']:.2%}",
        "n/a" if a["max_abs_logit_diff"] is None else f"{a['max_abs_logit_diff']:.1e}",
        status,
    ]


_HEADER = ["artifact", "method", "verified on", "KiB", "gzip KiB", "accuracy", "drop (pts)", "agree w/ float",
           "max Δlogit", "gate"]  # fmt: skip


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    rows = [header, *rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
        return "\n".join(lines) + "\n"
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows) + "\n"


def artifact_table(report: dict, markdown: bool = False) -> str:
    return _table(_HEADER, [_row(a) for a in report["artifacts"]], markdown)


_BUDGET_HEADER = ["int8 file", "flash KiB", "arena KiB", "MACs/image", "ops"]


def budget_table(report: dict, markdown: bool = False) -> str:
    """What each int8 file needs on a microcontroller (TensorFlow Lite Micro); empty without int8 files."""
    rows = [
        [a["name"], f"{b['flash_bytes'] / 1024:,.1f}", f"{b['arena_bytes'] / 1024:,.1f}", f"{b['macs_total']:,}",
         ", ".join(b["ops"])]  # fmt: skip
        for a in report["artifacts"]
        if (b := a.get("device_budget"))
    ]
    return _table(_BUDGET_HEADER, rows, markdown) if rows else ""


def _budget_note(report: dict) -> str:
    budgets = [a["device_budget"] for a in report["artifacts"] if a.get("device_budget")]
    if not budgets:
        return ""
    b = budgets[0]
    layers = ", ".join(f"{name} {count:,}" for name, count in b["macs_per_layer"].items())
    return (
        f"Arena: {b['arena_method']} (recorded {b['arena_recorded_bytes']:,} bytes, smallest that runs "
        f"{b['arena_smallest_bytes']:,}). MACs per layer: {layers}.\n"
    )


def terminal_summary(report: dict) -> str:
    out = io.StringIO()
    out.write(artifact_table(report))
    if budget_table(report):
        out.write("\ndevice budget (TensorFlow Lite Micro):\n" + budget_table(report) + _budget_note(report) + "\n")
    micro = report.get("micro")
    if micro:
        out.write(
            f"{micro['name']}: the bytes of {micro['source']} (SHA-256 {micro.get('source_sha256', '?')[:12]}…), "
            f"{micro['array_bytes']:,} bytes, "
            f"round-trip {'ok' if micro['bytes_match_tflite'] else 'FAIL'}, "
            f"{micro['compile']}, TFLite Micro agrees with LiteRT on "
            f"{micro['micro_agreement_with_litert']:.1%} of {micro['micro_images']:,} images"
            + (
                f" (outputs at most {micro['micro_max_output_diff_steps']:.0f} quantization step(s) apart)"
                if micro["micro_max_output_diff_steps"] is not None
                else ""
            )
            + f"; kFmnistTensorArenaSize = {micro['arena_bytes']:,}\n"
        )
    if report.get("web"):
        out.write(_web_sentence(report["web"]) + "\n")
    for a in report["artifacts"]:
        if "kernel_sparsity" in a:
            layers = ", ".join(f"{k} {v:.1%}" for k, v in a["kernel_sparsity"].items())
            out.write(f"{a['name']}: zero weights per kernel: {layers}\n")
        if "kernel_distinct_values" in a:
            values = ", ".join(f"{k} {v}" for k, v in a["kernel_distinct_values"].items())
            out.write(f"{a['name']}: distinct values per kernel: {values}\n")
    for failure in report["failures"]:
        out.write(f"FAIL {failure}\n")
    out.write(f"{report['test_images']:,} test images, {report['seconds']:.1f} s\n")
    return out.getvalue()


def _web_sentence(web: dict) -> str:
    """What the browser check found, in one sentence."""
    big = web["big_pictures"]
    return (
        f"{web['name']}: {web['runtime']} agrees with MediaPipe's Python ImageClassifier on "
        f"{web['agreement_with_python']:.1%} of {web['browser_images']:,} test images "
        f"({web['agreement_with_python_or_tied']:.1%} counting tied outputs); {big['right']} of {big['of']} "
        f"dark-on-white {big['side']}-pixel pictures came back as their class through the page's file input; "
        f"{web['requests_outside_origin']} request(s) left the page's origin; {web['size_bytes'] / 2**20:.1f} MiB"
    )


def _io_lines(report: dict) -> list[str]:
    lines = []
    for a in report["artifacts"]:
        if a["format"] != "tflite":
            continue
        i, o = a["io"]["input"], a["io"]["output"]
        contract = "raw pixels 0..255 as float32"
        if i["dtype"] != "float32":
            sign = "+" if i["zero_point"] >= 0 else "-"
            contract = f"q = round(pixel / {i['scale']:g}) {sign} {abs(i['zero_point'])} ({i['dtype']})"
        value = "probability" if a.get("output") == "probabilities" else "logit"
        out = "float32 logits" if o["dtype"] == "float32" else f"{value} = (q - ({o['zero_point']})) × {o['scale']:.6g}"
        lines.append(f"| `{a['name']}` | {i['dtype']} {i['shape']} | {contract} | {o['dtype']} {o['shape']} | {out} |")
    return lines


def report_markdown(report: dict) -> str:
    out = io.StringIO()
    out.write("# Export report\n\n")
    out.write(f"Command: `{report['command']}`  \nCreated: {report['created']}  \n")
    out.write(f"Model: `{report['model']}` (sha256 `{report['model_sha256'][:16]}…`)  \n")
    out.write(f"Verified on all {report['test_images']:,} Fashion-MNIST test images from `{report['data_dir']}`.\n\n")
    out.write(artifact_table(report, markdown=True))
    out.write(
        "\n`drop` is in percentage points against the float Keras model; `agree w/ float` is top-1 agreement. "
        "SavedModel and float32 TFLite must match Keras logits within "
        f"{report['config']['float_tolerance']:g}; quantized files may lose at most "
        f"{report['config']['max_accuracy_drop']:g} points.\n\n## Input and output contract\n\n"
    )
    out.write("| file | input | input encoding | output | output decoding |\n|---|---|---|---|---|\n")
    out.write("\n".join(_io_lines(report)) + "\n\n## Ops\n\n")
    for a in report["artifacts"]:
        if a["format"] == "tflite":
            out.write(f"- `{a['name']}`: {', '.join(a['ops'])}\n")
    if report.get("micro"):
        m = report["micro"]
        out.write(
            f"\n## TensorFlow Lite Micro\n\n`model_int8.cc` / `model_int8.h` hold the bytes of `{m['source']}` "
            f"(SHA-256 `{m.get('source_sha256', '?')}`) and define `{m['symbol']}` "
            f"({m['array_bytes']:,} bytes, 16-byte aligned), `{m['symbol']}_len` and `kFmnistTensorArenaSize` "
            f"({m['arena_bytes']:,} bytes, the arena the TFLM check ran in). Bytes equal the .tflite: "
            f"{m['bytes_match_tflite']}; {m['compile']}; the TFLM interpreter agrees with LiteRT on "
            f"{m['micro_agreement_with_litert']:.1%} of {m['micro_images']:,} test images.\n"
        )
    if budget_table(report):
        out.write("\n## Device budget (TensorFlow Lite Micro)\n\n" + budget_table(report, markdown=True))
        out.write("\n" + _budget_note(report))
    if report.get("web"):
        out.write("\n## Web page\n\n" + _web_sentence(report["web"]) + ". Open it with `fmnist serve`.\n")
    out.write("\n## Versions\n\n" + "".join(f"- {k}: {v}\n" for k, v in report["versions"].items()))
    if report.get("onednn"):
        out.write(f"- TensorFlow's {onednn.describe(report['onednn'])}\n")
    return out.getvalue()


def _augmentation(config: dict) -> str:
    """How a TrainConfig dict (as TrainConfig.from_dict normalises it) augmented its images."""
    from fmnist_keras.data.tf_datasets import Augmentation  # imports TensorFlow: only when a card is written

    recipe = TrainConfig.from_dict(config)
    described = Augmentation.describe(Augmentation.of(recipe))
    if described != "none" and recipe.augmented_epochs < recipe.epochs:
        described += f", none in the last {recipe.epochs - recipe.augmented_epochs} epochs"
    return described


def _kernels(training: dict) -> str:
    """Whether TensorFlow's oneDNN kernels trained the model; runs from before it was recorded say nothing."""
    state = training.get("onednn")
    if not state:
        return ""
    return f" with TensorFlow's {onednn.describe(state)}"


def _confusions_sentence(most_confused: list[dict]) -> str:
    """What the float model confuses most on the test set, from its own predictions."""
    if not most_confused or most_confused[0]["count"] == 0:
        return "It made no mistakes on the test set."
    pairs = [f"{c['true']} taken for {c['predicted']} ({c['count']} times)" for c in most_confused if c["count"]]
    return f"Its most frequent confusions on the 10,000 test images: {'; '.join(pairs)}."


def model_card(report: dict, model) -> str:
    out = io.StringIO()
    out.write("# Model card: fmnist-keras CNN\n\n## Architecture\n\n")
    macs = report["macs_per_layer"]
    out.write(
        f'The CNN of the article "Convolutional Neural Networks, Explained", channels-last: '
        f"{report['architecture']} (logits). {model.count_params():,} parameters; "
        f"{sum(macs.values()):,} multiply-accumulates per image ("
        + ", ".join(f"{name} {count:,}" for name, count in macs.items())
        + ").\n\n## Training\n\n"
    )
    out.write(_training_section(report.get("training")))
    out.write("## Metrics per artifact (all 10,000 test images)\n\n")
    out.write(artifact_table(report, markdown=True))
    if budget_table(report):
        out.write("\n## Device budget (TensorFlow Lite Micro)\n\n" + budget_table(report, markdown=True))
        out.write("\n" + _budget_note(report))
    out.write(_contract_section(report))
    out.write(
        "## Intended use and limitations\n\n"
        "A small reference classifier for the 10 Fashion-MNIST classes, for learning and for on-device "
        "pipelines. It expects centred, isolated items like the dataset's; photos need cropping, grayscale, "
        "resizing to 28×28 and, for dark-on-light pictures, inversion. "
        f"{_confusions_sentence(report['float_most_confused'])} "
        "It was not evaluated on any other data and must not be used for decisions about people.\n"
    )
    return out.getvalue()


def _contract_section(report: dict) -> str:
    return (
        "\n## Input contract\n\n"
        "One 28×28 grayscale image, light garment on a dark background (as in Fashion-MNIST), "
        "pixel intensities 0..255 unnormalised: the model rescales them itself.\n\n"
        "| file | input | input encoding | output | output decoding |\n|---|---|---|---|---|\n"
        + "\n".join(_io_lines(report))
        + "\n\nClass index order (`labels.txt`): "
        + ", ".join(f"{i} {n}" for i, n in enumerate(CLASS_NAMES))
        + ".\n\n"
    )


def _training_section(training: dict | None) -> str:
    """How the model was trained, from the metrics.json beside it."""
    out = io.StringIO()
    if training:
        c = training["config"]
        out.write(
            f"Fashion-MNIST, {training['num_train_images']:,} training images, {training['num_val_images']:,} "
            f"held out (stratified) for validation; the test set was evaluated once. Adam, peak learning rate "
            f"{c['learning_rate']:g} with {c['warmup_epochs']} warm-up epoch(s) and cosine decay, "
            f"weight decay {c.get('weight_decay', 0):g}, "
            f"{c['epochs']} epochs, "
            f"batch {c['batch_size']}, label smoothing {c['label_smoothing']:g}, augmentation "
            f"{_augmentation(c)}, seed {c['seed']}, computed in "
            f"{training.get('distribution', {}).get('compute_dtype', 'float32')}{_kernels(training)}. "
            f"Test accuracy {training['test_accuracy']:.2%}.\n\n"
        )
    else:
        out.write("No metrics.json was found beside the model, so the training recipe is unknown.\n\n")
    return out.getvalue()
