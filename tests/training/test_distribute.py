"""tf.distribute: strategy choice, TF_CONFIG validation, mirrored, multi-worker and mixed precision, all on CPU."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist_keras.cli import app
from fmnist_keras.errors import ClusterError
from fmnist_keras.training.distribute import Strategy, auto_strategy, parse_tf_config, scaled_learning_rate

runner = CliRunner()
# The device tests run in processes that see no GPU, so they test what they say on any machine.
CPU_ONLY = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
QUICK = ["--epochs", "1", "--max-train-images", "2000", "--batch-size", "50"]
TWO_WORKERS = {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]}


def _tf_config(cluster: dict, task_type: str, index: object) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "has no 'cluster'"),
        (json.dumps({"cluster": TWO_WORKERS}), "has no 'task'"),
        (json.dumps({"cluster": TWO_WORKERS, "task": {"type": "worker"}}), "has no 'task'"),
        (_tf_config(TWO_WORKERS, "worker", 2), "task index 2 is out of range"),
        (_tf_config(TWO_WORKERS, "worker", -1), "out of range"),
        (_tf_config(TWO_WORKERS, "worker", "0"), 'whole number like 0, not "0"'),
        (_tf_config(TWO_WORKERS, "chief", 0), "task type 'chief' is not a job of the cluster"),
        (_tf_config({"worker": ["localhost"]}, "worker", 0), "'host:port' strings"),
        (_tf_config({"worker": []}, "worker", 0), "'host:port' strings"),
        (_tf_config({"ps": ["a:1"]}, "ps", 0), "neither a 'chief' nor a 'worker'"),
        (_tf_config({"chief": ["a:1", "b:2"]}, "chief", 0), "more than one chief"),
        (_tf_config({"worker": ["a:1"], "evaluator": ["b:2"]}, "evaluator", 0), "does not train"),
    ],
)
def test_malformed_tf_config_is_one_clear_error(text, message):
    with pytest.raises(ClusterError, match=message):
        parse_tf_config(text)


def test_chief_is_the_chief_job_or_else_worker_0():
    assert parse_tf_config(_tf_config(TWO_WORKERS, "worker", 0)).is_chief
    assert not parse_tf_config(_tf_config(TWO_WORKERS, "worker", 1)).is_chief
    with_chief = {"chief": ["a:1"], "worker": ["b:2"]}
    assert parse_tf_config(_tf_config(with_chief, "chief", 0)).is_chief
    worker = parse_tf_config(_tf_config(with_chief, "worker", 0))
    assert not worker.is_chief and worker.num_workers == 2


def test_auto_strategy_and_learning_rate_rule():
    assert auto_strategy(0) is Strategy.default and auto_strategy(1) is Strategy.default
    assert auto_strategy(2) is Strategy.mirrored
    assert scaled_learning_rate(2e-3, 4) == pytest.approx(8e-3)


def test_bad_tf_config_through_the_cli_fails_before_writing_anything(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", "--strategy", "multi-worker", *QUICK, "--output", str(out)], env={"TF_CONFIG": "{oops"}
    )
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: TF_CONFIG is not valid JSON")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
def test_mirrored_with_one_device_works_with_a_note(tmp_path):
    # Its own process: after a fit() under MirroredStrategy, every later fit() in the same
    # process ran 1.6-2x slower here (page faults from TF's allocations), slowing the rest of the suite.
    done = subprocess.run(
        [sys.executable, "-m", "fmnist_keras", "train", "--strategy", "mirrored", *QUICK,
         "--output", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, env=CPU_ONLY,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "note: mirrored over one device" in done.stdout
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["distribution"]["strategy"] == "mirrored" and metrics["distribution"]["replicas"] == 1


def _is_float32_model(path: Path) -> bool:
    from fmnist_keras.runtimes.keras_file import load_trained_model

    model = load_trained_model(path)
    return all(layer.dtype_policy.name == "float32" for layer in model.layers) and all(
        w.dtype.name == "float32" for w in model.get_weights()
    )


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
def test_mixed_precision_trains_and_exports_a_float32_model(tmp_path):
    from fmnist_keras.training.precision import Precision, policy_on_this_machine

    policy = policy_on_this_machine(Precision.mixed)  # bfloat16 on a CPU, float16 on a GPU
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--precision", "mixed", *QUICK, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"compute dtype {policy}" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distribution"]["compute_dtype"] == policy and metrics["test_accuracy"] > 0.3
    assert _is_float32_model(out / "model.keras")
    exported = runner.invoke(app, ["export", "--model", str(out / "model.keras"), "--output", str(out)])
    assert exported.exit_code == 0, exported.output
    from fmnist_keras.runtimes.backends import io_details

    details = io_details((out / "model_float32.tflite").read_bytes())
    assert details["input"]["dtype"] == "float32" and details["output"]["dtype"] == "float32"


@pytest.mark.slow  # trains a model or starts TensorFlow afresh: seconds
def test_gpu_policy_mixed_float16_with_loss_scaling_also_runs_on_cpu(tmp_path, monkeypatch):
    """The GPU path (float16 + LossScaleOptimizer) is exercised here, on the CPU."""
    from fmnist_keras.config import TrainConfig
    from fmnist_keras.training import precision
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    monkeypatch.setattr(precision, "compute_policy", lambda *_: "mixed_float16")
    config = TrainConfig(epochs=1, max_train_images=1000, batch_size=50, precision="mixed")
    metrics = train_and_evaluate(config, tmp_path / "run", RunContext(verbose=0, log=lambda *_: None))
    assert metrics["distribution"]["compute_dtype"] == "mixed_float16"
    assert metrics["test_accuracy"] > 0.2
    assert _is_float32_model(tmp_path / "run" / "model.keras")


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from fmnist_keras.config import TrainConfig
    from fmnist_keras.training.loop import RunContext, train_and_evaluate

    out = sys.argv[1]
    # The default strategy first: after a fit() under MirroredStrategy, later fit()s in the same
    # process ran 1.6-2x slower here (page faults from TF's allocations).
    for strategy, batch, lr in (("default", 128, 4e-3), ("mirrored", 64, 2e-3)):
        config = TrainConfig(epochs=2, max_train_images=6000, strategy=strategy, batch_size=batch, learning_rate=lr)
        metrics = train_and_evaluate(config, f"{out}/{strategy}", RunContext(verbose=0, log=lambda *_: None))
        print(json.dumps(metrics))
    """
)


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_the_default_strategy(tmp_path):
    """Mirrored 64 x 2 replicas vs default with the same global batch (128) and learning rate (4e-3).

    The two compute the same gradient except that BatchNorm normalises each
    replica's 64 images on their own (no synchronised BN), so the runs are
    close but not bit-identical. Measured on seeds 0-2 (82.0-82.7 %): the two
    strategies were 0.2-0.6 points apart, about the seed-to-seed spread. 2
    points of tolerance catches a broken all-reduce or batch split (which
    costs far more) without flaking.
    """
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    # One process for both runs: a TensorFlow start-up less (about 5 s on a 2-core CPU).
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=CPU_ONLY)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # Learning rate per replica for mirrored (x2 by linear scaling): the same 4e-3 as the default's.
    default, mirrored = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    dist = mirrored["distribution"]
    assert dist["replicas"] == 2 and dist["global_batch_size"] == 128
    assert dist["peak_learning_rate"] == pytest.approx(4e-3)
    assert dist["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert mirrored["test_accuracy"] > 0.75
    assert abs(mirrored["test_accuracy"] - default["test_accuracy"]) < 0.02


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_worker(cluster: dict, index: int, output: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CONFIG": _tf_config(cluster, "worker", index)}
    command = [sys.executable, "-m", "fmnist_keras", "train", "--strategy", "multi-worker", *QUICK,
               "--output", str(output), *extra]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _finish(procs: list[subprocess.Popen], seconds: float) -> list[tuple[int, str]]:
    """Wait for every process at most `seconds` in all; kill whatever is left, even on failure."""
    deadline = time.monotonic() + seconds
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    return results


@pytest.mark.slow
def test_two_worker_processes_train_together_resume_together_and_only_the_chief_writes(tmp_path):
    """Two real processes on 127.0.0.1: both are killed after epoch 1, restarted, and finish epoch 2.

    Guards train._let_fit_run_multi_worker, which sets Keras 3.15's private
    `model._distribute_strategy` and wraps train_step/test_step (keras-team/keras#20585).
    """
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    chief_out, worker_out = tmp_path / "chief", tmp_path / "worker"
    two_epochs = ("--epochs", "2")
    procs = [_start_worker(cluster, 0, chief_out, *two_epochs), _start_worker(cluster, 1, worker_out, *two_epochs)]
    checkpoints = [
        chief_out / ".train_state" / "backup" / "training_metadata.json",
        worker_out / ".train_state-worker-1" / "backup" / "training_metadata.json",
    ]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not all(c.exists() for c in checkpoints):
            assert all(p.poll() is None for p in procs), "a worker ended before its first checkpoint"
            time.sleep(0.1)
        assert all(c.exists() for c in checkpoints), "no epoch-1 checkpoints within 180 s"
    finally:
        for proc in procs:  # the whole cluster goes down, as when a machine is lost
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)
    assert not (chief_out / "model.keras").exists()

    procs = [_start_worker(cluster, 0, chief_out, *two_epochs), _start_worker(cluster, 1, worker_out, *two_epochs)]
    (chief_code, chief_log), (worker_code, worker_log) = _finish(procs, 240)
    assert chief_code == 0, chief_log[-3000:]
    assert worker_code == 0, worker_log[-3000:]
    assert "Resuming" in chief_log and "Resuming" in worker_log
    assert "Epoch 1/2" not in chief_log  # epoch 1 was not trained again
    assert "worker 0 of 2 workers (chief)" in chief_log and "global batch 100 = 50 x 2" in chief_log
    assert "the chief writes the model" in worker_log
    metrics = json.loads((chief_out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert metrics["distribution"]["replicas"] == 2 and metrics["distribution"]["num_workers"] == 2
    assert metrics["test_accuracy"] > 0.4  # 40 steps of 100 images: learning, far from chance (10 %)
    assert (chief_out / "model.keras").is_file()
    assert list(worker_out.iterdir()) == []  # its checkpoints were temporary and are gone


@pytest.mark.slow
def test_a_worker_that_cannot_reach_the_chief_gives_up_in_bounded_time(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    started = time.monotonic()
    [(code, log)] = _finish([_start_worker(cluster, 1, tmp_path / "worker", "--cluster-timeout", "3")], 120)
    assert code == 2, log[-3000:]
    assert "error: worker 1 could not reach all 2 workers of the cluster within 3 s" in log
    assert "Traceback" not in log
    assert time.monotonic() - started < 90
    assert not (tmp_path / "worker" / "model.keras").exists()


@pytest.mark.slow
def test_a_leader_address_that_is_not_a_tensorflow_worker_is_one_line(tmp_path):
    # A gRPC server with no services answers at the leader's address (another program there).
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        cluster = {"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{_free_ports(1)[0]}"]}
        # The answer comes from the first registration attempt: the same line with a timeout of
        # 1, 2 or 5 s (measured), and each second of timeout costs the test about three.
        [(code, log)] = _finish([_start_worker(cluster, 1, tmp_path / "worker", "--cluster-timeout", "2")], 150)
    finally:
        server.stop(0)
    assert "Traceback" not in log, log[-3000:]
    assert code == 2 and "answers, but not as a TensorFlow worker" in log, log[-3000:]
