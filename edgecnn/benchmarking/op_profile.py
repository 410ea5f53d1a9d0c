"""Where the time goes inside one model: per-node kernel times from ONNX Runtime's own profiler.

The profiler (`SessionOptions.enable_profiling`) timestamps every node of every run, which adds a
little time per node; the per-node medians therefore show shares and orders of magnitude, while the
latency figures of `edgecnn bench` come from sessions that run without it. Node names and op types
are those of the graph ONNX Runtime really executed (after its fusions and layout rewrites), which
is the point: `QLinearConv`, `QGemm`, `ReorderOutput` show which kernels ran.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.scratch import scratch_dir
from edgecnn.runtime import sessions
from edgecnn.runtime.session_config import SessionConfig

DEFAULT_PROFILE_RUNS = 200
MAX_PROFILE_RUNS = 100_000


@dataclass(frozen=True)
class NodeTime:
    node: str
    op_type: str
    provider: str
    median_us: float
    share: float  # of the sum of all node medians


@dataclass(frozen=True)
class OpProfile:
    batch: int
    runs: int  # profiled runs the medians come from (after `warmup` unprofiled-in-the-stats runs)
    warmup: int
    run_median_us: float  # whole run with the profiler on
    nodes: tuple[NodeTime, ...]  # in execution order

    @property
    def node_sum_us(self) -> float:
        return float(sum(n.median_us for n in self.nodes))

    def by_op_type(self) -> list[tuple[str, int, float, float]]:
        """(op type, node count, summed median us, share), largest first."""
        totals: dict[str, list[float]] = {}
        for n in self.nodes:
            totals.setdefault(n.op_type, []).append(n.median_us)
        total = self.node_sum_us or 1.0
        rows = [(op, len(v), float(sum(v)), float(sum(v)) / total) for op, v in totals.items()]
        return sorted(rows, key=lambda r: -r[2])


def parse_profile(events: Sequence[Mapping[str, Any]], batch: int, warmup: int) -> OpProfile:
    """An ORT profile (the JSON list `end_profiling()` writes) reduced to per-node medians; the first
    `warmup` runs of each node and of the session are left out of the statistics."""
    runs = [float(e["dur"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    per_node: dict[str, list[float]] = {}
    info: dict[str, tuple[str, str]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        args = e.get("args") or {}
        per_node.setdefault(node, []).append(float(e["dur"]))
        info.setdefault(node, (str(args.get("op_name", "?")), str(args.get("provider", "?"))))
    timed_runs = runs[warmup:]
    if not timed_runs or not per_node:
        raise EdgecnnError(
            f"the ONNX Runtime profile holds {len(runs)} runs and {len(per_node)} nodes; nothing to report "
            f"after {warmup} warmup runs"
        )
    medians = {k: float(statistics.median(v[warmup:] or v)) for k, v in per_node.items()}
    total = sum(medians.values()) or 1.0
    nodes = tuple(
        NodeTime(k, info[k][0], info[k][1], median_us=medians[k], share=medians[k] / total)
        for k in per_node  # first appearance = execution order of the first run
    )
    return OpProfile(
        batch=batch,
        runs=len(timed_runs),
        warmup=warmup,
        run_median_us=float(statistics.median(timed_runs)),
        nodes=nodes,
    )


def profile_session_ops(
    path: str | os.PathLike[str],
    config: SessionConfig,
    feeds_for: Any,
    batch: int,
    runs: int = DEFAULT_PROFILE_RUNS,
    warmup: int = 20,
) -> tuple[OpProfile, str]:
    """Open a profiling session of `path` with `config`, run it `warmup + runs` times on the feeds that
    `feeds_for(session, batch)` returns, and return the reduced profile and the provider that ran.

    The raw profile file goes to a temporary directory and is removed: it grows by one event per node
    per run, and what a user needs is the reduced table."""
    if not 0 < runs <= MAX_PROFILE_RUNS:
        raise EdgecnnError(f"profiled runs must be between 1 and {MAX_PROFILE_RUNS}, got {runs}")
    if warmup < 0:
        raise EdgecnnError("profile warmup must be >= 0")
    with scratch_dir("profile") as tmp:
        cfg = replace(config, enable_profiling=True, profile_prefix=str(Path(tmp) / "ort"))
        session, provider = sessions.open_session(path, cfg)
        feeds = feeds_for(session, batch)
        output_names = [o.name for o in session.get_outputs()]
        for _ in range(warmup + runs):
            session.run(output_names, feeds)
        profile_file = session.end_profiling()
        events = _read_profile(Path(profile_file), tmp)
        del session
    return parse_profile(events, batch, warmup), provider


def _read_profile(profile_file: Path, scratch: Path) -> Any:
    """ORT's profile file; a short one means its write failed (a full TMPDIR), not a broken model."""
    try:
        return json.loads(profile_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgecnnError(
            f"ONNX Runtime's profile {profile_file} in the temporary directory {scratch} is unreadable "
            f"({type(exc).__name__}; full or not writable? set TMPDIR to a folder with free space)"
        ) from None


def feeds_from_arrays(arrays: Mapping[str, np.ndarray]) -> Any:
    """A `feeds_for` that always returns the same arrays (the batch is already theirs)."""
    return lambda _session, _batch: dict(arrays)
