"""One-process tf.distribute strategies for --strategy default and mirrored (local GPUs or logical CPUs).

--strategy multiworker does not come through here: its cluster is validated by `training.cluster`, met by
`training.rendezvous` and formed by `training.multiworker.make_multiworker_strategy`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LocalStrategy:
    strategy: Any
    replicas: int
    note: str | None = None  # said in the output and in train.json when the strategy is not what was asked


def make_strategy(tf: Any, name: str) -> LocalStrategy:
    """Must run before other TensorFlow work on the devices."""
    if name == "default":
        return LocalStrategy(tf.distribute.get_strategy(), 1)
    if name != "mirrored":
        raise ValueError(f"make_strategy is for default and mirrored, not {name!r}")
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        strategy = tf.distribute.MirroredStrategy(devices=[d.name for d in gpus])
    else:
        # No GPU: mirror over the logical CPU devices (one unless the caller split the CPU); NCCL is GPU-only.
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(
            devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    replicas = int(strategy.num_replicas_in_sync)
    note = None
    if replicas < 2:
        kind = "GPU" if gpus else "CPU device and no GPU"
        note = (
            f"--strategy mirrored found only one {kind}: trained one replica, the same as "
            "--strategy default (mirroring pays off with two or more GPUs)"
        )
    return LocalStrategy(strategy, replicas, note)
