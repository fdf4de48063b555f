import re

from typer.testing import CliRunner

from fmnist_keras import __version__
from fmnist_keras.cli import app
from fmnist_keras.config import ExportConfig, TrainConfig

runner = CliRunner()


def _plain(text: str) -> str:
    """Help text without its line wrapping."""
    return re.sub(r"\s+", " ", text)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"fmnist-keras {__version__}"


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(r"^  (\w+) ", result.output.split("Commands:")[1], flags=re.M)
    assert listed == ["train", "export", "evaluate", "predict", "bench", "info", "serve"]


def test_train_help_shows_the_real_defaults_from_the_config():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = _plain(result.output)
    config = TrainConfig()
    for option, value in (
        ("--epochs", config.epochs),
        ("--batch-size", config.batch_size),
        ("--learning-rate", config.learning_rate),
        ("--seed", config.seed),
        ("--validation-split", config.validation_split),
        ("--shift-pixels", config.shift_pixels),
        ("--flip / --no-flip", "no-flip" if not config.flip else "flip"),
        ("--strategy", config.strategy),
    ):
        assert re.search(rf"{option} .*?\[default: {value}[;\]]", text), option


def test_export_help_shows_the_real_defaults_from_the_config():
    result = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    text = _plain(result.output)
    assert f"[default: {ExportConfig().calibration_samples};" in text
    assert "none|float16|dynamic|int8" in text and "float32|int8|uint8" in text


def test_info_shows_model_versions_devices_and_data(real_data_dir):
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "29,130" in result.output  # total params in the summary
    assert "tensorflow" in result.output and "keras" in result.output and "ai_edge_litert" in result.output
    assert "CPU" in result.output
    from fmnist_keras.training.distribute import auto_strategy, num_gpus

    # What auto chooses depends on the machine's GPUs; the line must say that choice.
    assert f"--strategy auto chooses {auto_strategy(num_gpus()).value}:" in result.output
    from fmnist_keras.training.precision import Precision, policy_on_this_machine

    policy = policy_on_this_machine(Precision.auto) or "float32"
    assert f"--precision auto chooses {policy} on " in result.output
    from fmnist_keras.system import onednn

    assert f"TensorFlow's {onednn.describe()}" in result.output
    # Every optional runtime, with its version or "not installed", and what it enables.
    section = result.output.split("Optional runtimes\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in section] == ["mediapipe", "MediaPipe", "playwright", "Chromium", "a", "torch"]
    assert all("--target" in line or "--quantize" in line or "make bench" in line for line in section)
    assert f"found in {real_data_dir}" in result.output


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["fly"])
    assert result.exit_code == 2
