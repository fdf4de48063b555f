"""tf.distribute for `fmnist train --strategy`: which strategy, how many replicas, who is chief.

TensorFlow's own engines do the work (MirroredStrategy, MultiWorkerMirroredStrategy);
this module only chooses one, validates the cluster description and bounds the
wait for peers. The library never reads TF_CONFIG itself: the CLI passes its text
in, and we hand TensorFlow a cluster resolver built from what we validated.
"""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.
import json
from dataclasses import dataclass, field
from enum import Enum

from fmnist_keras.compat.tensorflow import configure_coordination_service
from fmnist_keras.errors import ClusterError

# Jobs of a TF_CONFIG cluster that train (an "evaluator" or "ps" task does not).
TRAINING_JOBS = ("chief", "worker")


class Strategy(str, Enum):
    auto = "auto"  # mirrored when TensorFlow sees more than one GPU, else default
    default = "default"  # one device: TensorFlow's default strategy
    mirrored = "mirrored"  # every local GPU (or every logical CPU device), all-reduce in memory
    multi_worker = "multi-worker"  # several processes/machines described by TF_CONFIG


@dataclass(frozen=True)
class ClusterTask:
    """A validated TF_CONFIG: the cluster and which task this process is."""

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        return sum(len(self.cluster.get(job, [])) for job in TRAINING_JOBS)

    @property
    def is_chief(self) -> bool:
        # TensorFlow's rule: task 0 of "chief" if there is one, else worker 0.
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_index}"

    @property
    def leader(self) -> str:
        job = "chief" if "chief" in self.cluster else "worker"
        return f"{job} 0 at {self.cluster[job][0]}"


def parse_tf_config(text: str | None) -> ClusterTask:
    """Validate the TF_CONFIG JSON; every problem is one ClusterError line."""
    hint = 'e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    if not text or not text.strip():
        raise ClusterError(f"--strategy multi-worker needs the TF_CONFIG environment variable; set it, {hint}")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClusterError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); {hint}") from None
    if not isinstance(parsed, dict):
        raise ClusterError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task'; {hint}")
    cluster, task = parsed.get("cluster"), parsed.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ClusterError(f"TF_CONFIG has no 'cluster' mapping job names to address lists; {hint}")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses or not all(_is_address(a) for a in addresses):
            raise ClusterError(f"TF_CONFIG cluster job {job!r} must be a non-empty list of 'host:port' strings")
    if not any(job in cluster for job in TRAINING_JOBS):
        raise ClusterError("TF_CONFIG cluster has neither a 'chief' nor a 'worker' job; list the training processes")
    if len(cluster.get("chief", [])) > 1:
        raise ClusterError("TF_CONFIG cluster has more than one chief; list one chief and put the rest under 'worker'")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ClusterError('TF_CONFIG has no \'task\' with "type" and "index" saying which process this is')
    task_type, index = task["type"], task["index"]
    if task_type not in cluster:
        raise ClusterError(f"TF_CONFIG task type {task_type!r} is not a job of the cluster ({', '.join(cluster)})")
    if task_type not in TRAINING_JOBS:
        raise ClusterError(f"TF_CONFIG task type {task_type!r} does not train; run fmnist train as chief or worker")
    if not isinstance(index, int) or isinstance(index, bool):
        raise ClusterError(f"TF_CONFIG task index must be a whole number like 0, not {json.dumps(index)}")
    if not 0 <= index < len(cluster[task_type]):
        raise ClusterError(
            f"TF_CONFIG task index {index!r} is out of range: job {task_type!r} has "
            f"{len(cluster[task_type])} task(s), so the index must be 0..{len(cluster[task_type]) - 1}"
        )
    return ClusterTask({job: list(a) for job, a in cluster.items()}, task_type, index)


def _is_address(value: object) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def auto_strategy(num_gpus: int) -> Strategy:
    """What --strategy auto means on a machine with `num_gpus` GPUs."""
    return Strategy.mirrored if num_gpus > 1 else Strategy.default


def scaled_learning_rate(learning_rate: float, replicas: int) -> float:
    """Linear scaling rule (Goyal et al. 2017): the global batch grows with the replicas, so does the step.

    The warm-up that training already does keeps the larger early steps stable.
    """
    return learning_rate * replicas


@dataclass
class Placement:
    """A created strategy and what the training loop needs to know about it."""

    strategy: object  # tf.distribute.Strategy
    kind: Strategy
    replicas: int
    devices: list[str]
    is_chief: bool = True
    task: ClusterTask | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = ", ".join(d.replace("/job:localhost/replica:0/task:0/device:", "") for d in self.devices)
        text = f"strategy {self.kind.value}: {self.replicas} replica(s) ({where})"
        if self.task is not None:
            text += f", this process is {self.task.name} of {self.task.num_workers} workers"
            text += " (chief)" if self.is_chief else ""
        return text


def local_devices(kind: str) -> list[str]:
    """Logical device names ("/device:CPU:0", ...); initialises TensorFlow's runtime."""
    import tensorflow as tf

    return [d.name for d in tf.config.list_logical_devices(kind)]


def num_gpus() -> int:
    """Physical GPUs, counted without initialising the runtime (multi-worker must configure it first)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def create_strategy(kind: Strategy, tf_config: str | None = None, timeout_seconds: int = 120) -> Placement:
    """Create the tf.distribute strategy for `kind`; multi-worker waits for its peers at most `timeout_seconds`.

    Must run before TensorFlow executes any op in this process when `kind` is
    multi-worker (TensorFlow fixes its cluster at start-up).
    """
    import tensorflow as tf

    notes: list[str] = []
    if kind is Strategy.auto:
        kind = auto_strategy(num_gpus())
    if kind is Strategy.multi_worker:
        task = parse_tf_config(tf_config)
        strategy = _multi_worker_strategy(task, timeout_seconds)
        devices = local_devices("GPU") or local_devices("CPU")[:1]
        return Placement(strategy, kind, strategy.num_replicas_in_sync, devices, task.is_chief, task, notes)
    if tf_config and tf_config.strip():
        notes.append("TF_CONFIG is set but ignored: pass --strategy multi-worker to train as part of that cluster")
    gpus = local_devices("GPU")
    if kind is Strategy.default:
        strategy = tf.distribute.get_strategy()
        devices = (gpus or local_devices("CPU"))[:1]
        return Placement(strategy, kind, 1, devices, notes=notes)
    if kind is Strategy.mirrored:
        # MirroredStrategy() alone ignores extra logical CPU devices; name the devices explicitly.
        devices = gpus or local_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        if len(devices) == 1:
            notes.append(f"mirrored over one device ({devices[0]}) trains like the default strategy")
        return Placement(strategy, kind, strategy.num_replicas_in_sync, devices, notes=notes)
    raise ValueError(f"unknown strategy {kind!r}; expected one of {[s.value for s in Strategy]}")


def _multi_worker_strategy(task: ClusterTask, timeout_seconds: int):
    import tensorflow as tf

    cluster = {job: task.cluster[job] for job in TRAINING_JOBS if job in task.cluster}
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task.task_type, task_id=task.task_index, rpc_layer="grpc"
    )
    # TensorFlow's default coordination service waits for missing peers forever (the
    # leader) or an hour (the others). A registration barrier with our deadline makes
    # every task give up together, with an error we can explain.
    leader_job = "chief" if "chief" in cluster else "worker"
    jobs = {job: len(addresses) for job, addresses in cluster.items()}
    configure_coordination_service(f"/job:{leader_job}/replica:0/task:0", timeout_seconds * 1000, jobs)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as exc:
        raise ClusterError(
            f"{task.name} could not reach all {task.num_workers} workers of the cluster within "
            f"{timeout_seconds} s (leader: {task.leader}; {type(exc).__name__}); start every worker with the same "
            "TF_CONFIG cluster, check the addresses and firewalls, or raise --cluster-timeout"
        ) from None
    except tf.errors.UnimplementedError:
        raise ClusterError(
            f"the leader's address {task.leader} answers, but not as a TensorFlow worker (another program "
            "listens there); start the chief with the same TF_CONFIG there, or correct the address"
        ) from None
    except tf.errors.UnknownError as exc:
        if "gRPC server" not in str(exc):
            raise
        own = task.cluster[task.task_type][task.task_index]
        raise ClusterError(
            f"{task.name} could not listen on {own} (is the port in use by another process?); "
            "free it or give this task another port in TF_CONFIG"
        ) from None
