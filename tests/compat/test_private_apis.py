"""Each private API fmnist_keras uses, as the installed library has it. A failure here means an
upgrade moved or changed one: update fmnist_keras/compat/ (and its CHECKED_ON) deliberately."""

import inspect

import pytest

from fmnist_keras.compat import keras as keras_compat
from fmnist_keras.compat import mediapipe as mediapipe_compat
from fmnist_keras.compat import tensorflow as tf_compat
from fmnist_keras.compat import tflite_micro as micro_compat
from fmnist_keras.system.versions import installed_version


def _same_line(dist: str, checked_on: str) -> None:
    installed = installed_version(dist)
    assert installed is not None and installed.startswith(checked_on), (
        f"{dist} {installed} is installed; fmnist_keras/compat/ was checked on {checked_on}: "
        "re-check its private APIs, then update CHECKED_ON"
    )


def test_tensorflow_private_apis():
    _same_line("tensorflow", tf_compat.CHECKED_ON)
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context
    from tensorflow.python.util import _pywrap_util_port

    assert callable(_pywrap_util_port.IsMklEnabled), "TensorFlow moved IsMklEnabled: --precision auto reads it"
    assert {"name", "num_tasks"} <= set(coordination_config_pb2.CoordinatedJob.DESCRIPTOR.fields_by_name)
    parameters = inspect.signature(context.Context.configure_coordination_service).parameters
    assert {"service_type", "service_leader", "cluster_register_timeout_in_ms", "coordinated_jobs"} <= set(parameters)
    assert isinstance(tf_compat.onednn_enabled(), bool)


def test_keras_private_apis(tmp_path):
    _same_line("keras", keras_compat.CHECKED_ON)
    import keras

    assert callable(getattr(keras.callbacks.BackupAndRestore, "_save_model", None)), (
        "Keras dropped BackupAndRestore._save_model: the full-disk check before a checkpoint no longer runs"
    )
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    checked = []
    callback = keras_compat.backup_and_restore(str(tmp_path), lambda: checked.append(1))
    callback.set_model(model)
    callback._save_model()  # our hook first, then Keras's own checkpoint
    assert checked == [1] and any(tmp_path.iterdir()), "BackupAndRestore._save_model no longer writes a checkpoint"
    assert hasattr(model, "_distribute_strategy"), "Keras renamed Model._distribute_strategy"


def test_tflite_micro_private_apis():
    _same_line("tflite-micro", micro_compat.CHECKED_ON)
    from tflite_micro.python.tflite_micro import runtime

    parameters = inspect.signature(runtime.Interpreter.from_bytes).parameters
    assert "intrepreter_config" in parameters, f"tflite_micro renamed its keyword: {list(parameters)}"
    assert micro_compat.arena_total(["[RecordingMicroAllocator] Arena allocation total 18544 bytes"]) == 18544


def test_mediapipe_private_apis():
    _same_line("mediapipe", mediapipe_compat.CHECKED_ON)
    import importlib
    import sys

    # The stand-in is needed only while the wheel lacks the module: if it ships, drop the stand-in.
    if mediapipe_compat.MISSING_MODULE not in sys.modules:  # not yet replaced by our stand-in
        with pytest.raises(ImportError):
            importlib.import_module(mediapipe_compat.MISSING_MODULE)
    _, metadata_writer = mediapipe_compat.metadata_writers(lambda _: "1.0.0")
    source = inspect.getsource(metadata_writer.MetadataWriter)
    assert "self._general_md" in source, "MediaPipe renamed MetadataWriter._general_md: version/author/license"
