"""The one place that decides whether TensorFlow runs its oneDNN kernels."""

import platform
import subprocess
import sys

import pytest

from fmnist_keras.system import onednn


def test_fmnist_turns_onednn_on_on_any_x86_64_cpu():
    environ = {}
    assert onednn.choose(environ, machine="x86_64", tensorflow_imported=False) == onednn.BY_FMNIST
    assert environ[onednn.SWITCH] == "1"
    # A child process (a benchmark's `fmnist train`) inherits the value and still names fmnist.
    assert onednn.choose(dict(environ), machine="x86_64", tensorflow_imported=False) == onednn.BY_FMNIST


@pytest.mark.parametrize("value", ["0", "1"])
def test_the_users_setting_wins(value):
    environ = {onednn.SWITCH: value}
    decided = onednn.choose(environ, machine="x86_64", tensorflow_imported=False)
    assert decided == f"TF_ENABLE_ONEDNN_OPTS={value} set by you"
    assert environ == {onednn.SWITCH: value}


def test_the_user_overriding_an_inherited_choice_is_the_user():
    environ = {}
    onednn.choose(environ, machine="x86_64", tensorflow_imported=False)
    environ[onednn.SWITCH] = "0"
    assert onednn.choose(environ, machine="x86_64", tensorflow_imported=False).endswith("set by you")


def test_other_cpus_and_a_late_import_keep_tensorflows_default():
    environ = {}
    decided = onednn.choose(environ, machine="aarch64", tensorflow_imported=False)
    assert decided == "TensorFlow's default on this aarch64 CPU"
    assert onednn.choose(environ, machine="x86_64", tensorflow_imported=True) == onednn.TOO_LATE
    assert environ == {}


def _fresh(code: str, env: dict) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
@pytest.mark.skipif(platform.machine() != "x86_64", reason="fmnist turns oneDNN on only on x86-64")
def test_tensorflow_really_runs_onednn_after_importing_fmnist(monkeypatch):
    # A fresh interpreter without the switch, as a user's shell on an AVX2 laptop (where
    # TensorFlow alone would leave it off): importing fmnist_keras first turns it on.
    import os

    env = {k: v for k, v in os.environ.items() if k not in (onednn.SWITCH, "FMNIST_ONEDNN_CHOSEN")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    code = "import fmnist_keras; from fmnist_keras.system import onednn; print(onednn.describe())"
    assert _fresh(code, env) == f"oneDNN on ({onednn.BY_FMNIST})"
    assert _fresh(code, {**env, onednn.SWITCH: "0"}) == "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0 set by you)"
