"""Distributed training: TF_CONFIG validation, which worker is the chief, and the tf.distribute strategy
for --strategy (default, mirrored over local GPUs or logical CPUs, multiworker)."""

from __future__ import annotations

import json
import os
from typing import Any

from edgecnn.core.errors import EdgecnnError


def check_tf_config() -> dict[str, Any]:
    """Validate TF_CONFIG for --strategy multiworker; return it parsed."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise EdgecnnError(
            "--strategy multiworker needs TF_CONFIG (JSON with 'cluster' and 'task') set on every worker"
        )
    try:
        cfg = json.loads(raw)
    except ValueError as exc:
        raise EdgecnnError(f"TF_CONFIG is not valid JSON ({exc})") from None
    if (
        not isinstance(cfg, dict)
        or not isinstance(cfg.get("cluster"), dict)
        or not isinstance(cfg.get("task"), dict)
    ):
        raise EdgecnnError("TF_CONFIG must be a JSON object with 'cluster' and 'task' objects")
    task = cfg["task"]
    kind, index = task.get("type"), task.get("index")
    if kind not in cfg["cluster"] or not isinstance(index, int):
        raise EdgecnnError(
            f"TF_CONFIG task {task!r} does not name a job in its cluster with an integer index"
        )
    if not 0 <= index < len(cfg["cluster"][kind]):
        raise EdgecnnError(f"TF_CONFIG task index {index} is outside the {kind} list")
    return cfg


def is_chief(tf_config: dict[str, Any] | None) -> bool:
    """Only the chief writes the run directory; without TF_CONFIG this process is the whole run."""
    if tf_config is None:
        return True
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def make_strategy(tf: Any, name: str) -> Any:
    """Must run before other TensorFlow work: MultiWorkerMirroredStrategy has to exist first."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy(devices=[d.name for d in gpus])
        # No GPU: mirror over the logical CPU devices (one unless the caller split the CPU); NCCL is GPU-only.
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    return tf.distribute.MultiWorkerMirroredStrategy()
