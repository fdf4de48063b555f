"""TensorFlow's private APIs, checked on TensorFlow 2.21 (tests/compat/ fails loudly on a change)."""

from __future__ import annotations

# TensorFlow is imported inside the functions that need it: importing this module (and `fmnist --help`) stays fast.

CHECKED_ON = "2.21"


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels: TensorFlow's own answer, read from the
    private `_pywrap_util_port.IsMklEnabled` (no public API says it)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def configure_coordination_service(leader: str, timeout_ms: int, jobs: dict[str, int]) -> None:
    """Make every task of a multi-worker cluster register with `leader` within `timeout_ms`,
    behind a barrier (TensorFlow's default waits forever). Only the private eager context
    and the coordination protobuf expose this."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=leader,
        cluster_register_timeout_in_ms=timeout_ms,
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job, num_tasks=n) for job, n in jobs.items()],
    )
    context.context().coordination_service.cluster_register_with_barrier = True
