"""A session opened the way every edgecnn command opens one: fallback off, the first run done and
checked, and where its nodes really ran (placement) measured from that first run.

    checked = open_checked(path, config, feeds_for, allow_cpu_nodes=False)
    checked.session, checked.provider, checked.placement, checked.first_outputs

ORT's profiler is on for the creation and the first run only (`placement_from_session` ends it), so
no later (timed) run is profiled. The first run is a plain `session.run`, before any timed or CUDA-graph
run. A requested GPU device on which a node that is not a shape op ran on the CPU is an error unless
`allow_cpu_nodes` (see `placement.check_placement`); `auto` is checked against what it picked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.runtime.graph_stats import count_compute_nodes
from edgecnn.runtime.placement import (
    Placement,
    check_placement,
    placement_from_session,
    temporary_profile_prefix,
)
from edgecnn.runtime.providers import DEVICE_FOR_PROVIDER
from edgecnn.runtime.session_config import SessionConfig
from edgecnn.runtime.sessions import open_session, run_first

FeedsFor = Callable[[Any], dict[str, np.ndarray]]  # the open session -> the first run's inputs


@dataclass
class CheckedSession:
    session: Any
    provider: str  # the session's first provider, as ORT registered it
    device: str  # the device that ran (what `auto` picked)
    placement: Placement  # where the nodes of the first run really ran
    first_feeds: dict[str, np.ndarray]
    first_outputs: list[np.ndarray]
    session_create_ns: int
    first_run_ns: int


def open_checked(
    path: str | Path,
    config: SessionConfig,
    feeds_for: FeedsFor,
    *,
    allow_cpu_nodes: bool = False,
    notes: list[str] | None = None,
    output_names: list[str] | None = None,
    run_options: Any = None,
) -> CheckedSession:
    """Open `path` on `config.device`, run it once on `feeds_for(session)` and check its placement.

    Raises a one-line EdgecnnError when the provider fails to start or to run (no fallback), or when
    the nodes did not run where the device says."""
    with temporary_profile_prefix() as prefix:
        profiled = replace(config, enable_profiling=True, profile_prefix=prefix)
        t0 = time.perf_counter_ns()
        session, provider = open_session(path, profiled, notes)
        create_ns = time.perf_counter_ns() - t0
        device = DEVICE_FOR_PROVIDER.get(provider, config.device)
        feeds = feeds_for(session)
        first_run_ns = 0

        def first_run() -> Any:
            # Timed inside run_first's log capture, so the figure is the run alone.
            nonlocal first_run_ns
            t0 = time.perf_counter_ns()
            try:
                return session.run(output_names, feeds, run_options)
            finally:
                first_run_ns = time.perf_counter_ns() - t0

        outputs = run_first(session, device, first_run)
        placement = placement_from_session(session)
    check_placement(
        placement,
        device,
        allow_cpu_nodes=allow_cpu_nodes,
        model_compute_nodes=count_compute_nodes(path) if device == "tensorrt" else 0,
        trt_min_compute_share=config.trt_min_compute_share,
    )
    return CheckedSession(
        session=session,
        provider=provider,
        device=device,
        placement=placement,
        first_feeds=feeds,
        first_outputs=list(outputs),
        session_create_ns=create_ns,
        first_run_ns=first_run_ns,
    )
