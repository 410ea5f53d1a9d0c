"""Who is in a multi-worker training cluster: `TF_CONFIG`, validated fully, as a typed `ClusterSpec`.

TensorFlow-free on purpose: every worker checks its `TF_CONFIG` (and reports a one-line error) before
TensorFlow starts forming the cluster, where a bad entry would only show up as a silent hang."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgecnn.core.errors import EdgecnnError

# Only these jobs take part in MultiWorkerMirroredStrategy's all-reduce; "ps" and "evaluator" belong to
# other strategies, and a cluster listing them would wait for tasks that never join.
JOBS = ("chief", "worker")


@dataclass(frozen=True)
class WorkerAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: Any, where: str) -> WorkerAddress:
    """One `host:port` entry of a job list ("[::1]:2222" for IPv6)."""
    if not isinstance(text, str) or ":" not in text:
        raise EdgecnnError(f"TF_CONFIG {where} is {text!r}; each worker must be a 'host:port' string")
    host, _, port_text = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise EdgecnnError(f"TF_CONFIG {where} is {text!r}; expected host:port with a port in 1-65535")
    return WorkerAddress(host, int(port_text))


@dataclass(frozen=True)
class ClusterSpec:
    """The cluster in TensorFlow's task order (the chief, if any, then the workers) and this task's rank.

    The chief (the "chief" task, else worker 0) is the one worker that writes the run directory."""

    addresses: tuple[WorkerAddress, ...]
    names: tuple[str, ...]  # "chief", "worker 0", "worker 1", ... in the same order
    rank: int  # this task's position in `addresses`
    raw: Mapping[str, Any]  # the TF_CONFIG document, for TensorFlow's own resolver

    def __post_init__(self) -> None:
        if not self.addresses or len(self.addresses) != len(self.names):
            raise EdgecnnError("a cluster needs at least one worker, each with a name and an address")
        if not 0 <= self.rank < len(self.addresses):
            raise EdgecnnError(f"task rank {self.rank} is outside the cluster of {len(self.addresses)}")
        seen: dict[WorkerAddress, str] = {}
        for name, address in zip(self.names, self.addresses, strict=True):
            if address in seen:
                raise EdgecnnError(
                    f"TF_CONFIG lists {address} twice ({seen[address]} and {name}); "
                    "every worker needs its own host:port"
                )
            seen[address] = name

    @property
    def size(self) -> int:
        return len(self.addresses)

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    @property
    def address(self) -> WorkerAddress:
        return self.addresses[self.rank]

    @property
    def peers(self) -> tuple[int, ...]:
        """Ranks of the other workers."""
        return tuple(r for r in range(self.size) if r != self.rank)

    def describe(self, ranks: tuple[int, ...] | list[int]) -> str:
        """'worker 1 at localhost:23452, worker 2 at ...' for messages that must name who is missing."""
        return ", ".join(f"{self.names[r]} at {self.addresses[r]}" for r in ranks)


def _job_addresses(cluster: Mapping[str, Any]) -> tuple[list[WorkerAddress], list[str]]:
    addresses: list[WorkerAddress] = []
    names: list[str] = []
    for job in JOBS:
        if job not in cluster:
            continue
        entries = cluster[job]
        if not isinstance(entries, list) or not entries:
            raise EdgecnnError(f"TF_CONFIG cluster {job!r} must be a non-empty list of 'host:port' strings")
        if job == "chief" and len(entries) != 1:
            raise EdgecnnError(f"TF_CONFIG cluster lists {len(entries)} chiefs; there can be only one")
        for i, entry in enumerate(entries):
            addresses.append(parse_address(entry, f"cluster {job}[{i}]"))
            names.append("chief" if job == "chief" else f"worker {i}")
    return addresses, names


def validate_tf_config(text_or_dict: str | Mapping[str, Any]) -> ClusterSpec:
    """Check a `TF_CONFIG` (JSON text or parsed) the way MultiWorkerMirroredStrategy needs it."""
    doc: Any = text_or_dict
    if isinstance(text_or_dict, str):
        try:
            doc = json.loads(text_or_dict)
        except ValueError as exc:
            raise EdgecnnError(f"TF_CONFIG is not valid JSON ({exc})") from None
    if not isinstance(doc, Mapping) or not all(isinstance(doc.get(k), Mapping) for k in ("cluster", "task")):
        raise EdgecnnError("TF_CONFIG must be a JSON object with 'cluster' and 'task' objects")
    cluster, task = doc["cluster"], doc["task"]
    other = sorted(set(cluster) - set(JOBS))
    if other:
        raise EdgecnnError(
            f"TF_CONFIG cluster has a {other[0]!r} job; --strategy multiworker runs only "
            "'chief' and 'worker' tasks (parameter servers and evaluators belong to other strategies)"
        )
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster or not isinstance(index, int) or isinstance(index, bool):
        raise EdgecnnError(
            f"TF_CONFIG task {dict(task)!r} does not name a job in its cluster with an integer index"
        )
    addresses, names = _job_addresses(cluster)
    if not 0 <= index < len(cluster[kind]):
        raise EdgecnnError(
            f"TF_CONFIG task index {index} is outside the {kind} list ({len(cluster[kind])} entries)"
        )
    rank = index + (1 if kind == "worker" and "chief" in cluster else 0)
    return ClusterSpec(tuple(addresses), tuple(names), rank, dict(doc))


def cluster_from_env(environ: Mapping[str, str] | None = None) -> ClusterSpec:
    """The validated `TF_CONFIG` of this process."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        raise EdgecnnError(
            "--strategy multiworker needs TF_CONFIG (JSON with 'cluster' and 'task') set on every worker"
        )
    return validate_tf_config(raw)
