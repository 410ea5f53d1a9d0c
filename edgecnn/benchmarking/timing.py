"""Timing calls the way `edgecnn bench` does: per-call latencies, interleaved rounds, statistics.

Used by bench, by export's quick latency check and by the benchmark scripts (TFLite/OpenVINO runners too)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime import io_binding as iobinding

DEFAULT_ITERATIONS = 100
MAX_ITERATIONS = 1_000_000  # a --duration run stops here too, so the sample list stays bounded


@dataclass(frozen=True)
class LatencyStats:
    iterations: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    total_s: float

    @classmethod
    def from_ns(cls, samples_ns: np.ndarray) -> LatencyStats:
        return cls.from_ms(np.asarray(samples_ns, dtype=np.float64) / 1e6)

    @classmethod
    def from_ms(cls, samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
        """The statistics of per-call latencies given in milliseconds."""
        ms = np.asarray(samples_ms, dtype=np.float64).ravel()
        if ms.size == 0:
            raise EdgecnnError("no timed iterations")
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(
            iterations=int(ms.size),
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
            min_ms=float(ms.min()),
            p50_ms=float(p50),
            p90_ms=float(p90),
            p95_ms=float(p95),
            p99_ms=float(p99),
            max_ms=float(ms.max()),
            total_s=float(ms.sum() / 1e3),
        )


def timed_loop(
    fn: Callable[[], Any], warmup: int, iterations: int | None, duration_s: float | None
) -> np.ndarray:
    """Per-call latencies in ns. Only `fn()` sits between the two clock reads; the collector is off
    so a garbage collection pause is not billed to whatever call it happens to interrupt."""
    clock = time.perf_counter_ns
    for _ in range(warmup):
        fn()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if iterations is not None:
            samples = [0] * iterations
            for i in range(iterations):
                t0 = clock()
                fn()
                samples[i] = clock() - t0
        else:
            samples = []
            append = samples.append
            deadline = clock() + int(float(duration_s or 0) * 1e9)
            while True:
                t0 = clock()
                fn()
                t1 = clock()
                append(t1 - t0)
                if t1 >= deadline or len(samples) >= MAX_ITERATIONS:
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(samples, dtype=np.int64)


def block_sizes(total: int, rounds: int) -> list[int]:
    """`total` runs spread over `rounds` blocks as evenly as possible (the first ones get the rest)."""
    base, extra = divmod(total, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def rotated_order(count: int, round_index: int) -> list[int]:
    """Model order in one round: shifted by one each round, so no model always runs first (or right
    after the same neighbour's cache and thermal footprint)."""
    shift = round_index % count if count else 0
    return list(range(shift, count)) + list(range(shift))


def interleave_ns(
    fns: Sequence[Callable[[], Any]],
    rounds: int,
    iterations_per_round: int | Sequence[int] | None,
    duration_per_round_s: float | None,
    warmup: int = 0,
    block_warmup: int = 1,
    on_round: Callable[[int], None] = lambda _r: None,
) -> list[list[np.ndarray]]:
    """Per callable, per round, the latencies in ns. Every callable is warmed up first (in the given
    order), then each round times a block of each callable in `rotated_order`, after `block_warmup`
    untimed calls: the first call after a switch pays for what the previous runner left behind (its
    data in the caches, an ONNX Runtime pool of the other session still spinning), which is a cost of
    interleaving, not of the model."""
    if rounds <= 0:
        raise EdgecnnError("rounds must be >= 1")
    if (iterations_per_round is None) == (duration_per_round_s is None):
        raise EdgecnnError("give iterations per round or a duration per round, not both or neither")
    if iterations_per_round is None:
        blocks: list[int | None] = [None] * rounds
    elif isinstance(iterations_per_round, (int, np.integer)):
        blocks = [int(iterations_per_round)] * rounds
    else:
        blocks = [int(b) for b in iterations_per_round]
        if len(blocks) != rounds:
            raise EdgecnnError(f"got {len(blocks)} block sizes for {rounds} rounds")
    if any(b is not None and b <= 0 for b in blocks):
        raise EdgecnnError("every round needs at least one iteration per model")
    if warmup < 0 or block_warmup < 0:
        raise EdgecnnError("warmup counts must be >= 0")
    for fn in fns:
        for _ in range(warmup):
            fn()
    out: list[list[np.ndarray]] = [[] for _ in fns]
    for r, block in enumerate(blocks):
        for i in rotated_order(len(fns), r):
            out[i].append(
                timed_loop(fns[i], block_warmup, block, None if block is not None else duration_per_round_s)
            )
        on_round(r)
    return out


def interleaved_rounds_by_round(
    runners: Mapping[str, Callable[[], Any]],
    rounds: int,
    iterations_per_round: int | None = None,
    *,
    duration_per_round_s: float | None = None,
    warmup: int = 0,
    block_warmup: int = 1,
) -> dict[str, list[list[float]]]:
    """Time several runners side by side: `warmup` untimed calls of each, then `rounds` rounds in
    which every runner runs a block of `iterations_per_round` timed calls (or for
    `duration_per_round_s` seconds), in an order rotated by one each round. Each block starts with
    `block_warmup` untimed calls, so the switch from the previous runner is not billed to this one.

    A runner is any zero-argument callable doing one inference (an ONNX `session_runner`, a TFLite
    `interpreter.invoke`, a Keras `tf.function` call...); only the call sits between the two
    `perf_counter_ns` reads and the garbage collector is off inside each block, exactly as in
    `edgecnn bench`. Returns, per runner name, one list of per-call latencies in ms per round, in
    round order (feed it to `speedup_vs_baseline` for drift-robust ratios)."""
    names = list(runners)
    per = interleave_ns(
        [runners[n] for n in names], rounds, iterations_per_round, duration_per_round_s, warmup, block_warmup
    )
    return {n: [(block / 1e6).tolist() for block in per[i]] for i, n in enumerate(names)}


def interleaved_rounds(
    runners: Mapping[str, Callable[[], Any]],
    rounds: int,
    iterations_per_round: int | None = None,
    *,
    duration_per_round_s: float | None = None,
    warmup: int = 0,
    block_warmup: int = 1,
) -> dict[str, list[float]]:
    """`interleaved_rounds_by_round` with each runner's rounds concatenated: per runner name, all its
    per-call latencies in ms (feed them to `LatencyStats.from_ms`)."""
    by_round = interleaved_rounds_by_round(
        runners,
        rounds,
        iterations_per_round,
        duration_per_round_s=duration_per_round_s,
        warmup=warmup,
        block_warmup=block_warmup,
    )
    return {n: [x for block in blocks for x in block] for n, blocks in by_round.items()}


def session_runner(
    session: Any,
    provider: str,
    feeds: Mapping[str, np.ndarray],
    *,
    io_binding: bool = True,
    device_id: int = 0,
    graph_id: int | None = None,
) -> Callable[[], Any]:
    """The zero-argument call `edgecnn bench` times for an open ONNX Runtime session: inputs (and
    outputs whose shape follows from the batch) bound once on the provider's device via
    `runtime.io_binding.bind_io`, so the call is just `run_with_iobinding`; with `io_binding=False`, a plain
    `session.run` on the given host arrays (copies included in every call). `provider` is what
    `runtime.sessions.open_session` returned (e.g. "CPUExecutionProvider"). The returned callable keeps the
    binding and its buffers alive."""
    return bound_runner(session, provider, feeds, io_binding, device_id, graph_id)[0]


def bound_runner(
    session: Any,
    provider: str,
    feeds: Mapping[str, np.ndarray],
    io_binding: bool,
    device_id: int,
    graph_id: int | None,
) -> tuple[Callable[[], Any], iobinding.BoundIO | None]:
    if io_binding:
        bound = iobinding.bind_io(session, provider, dict(feeds), device_id, graph_id)
        return bound.run, bound
    output_names = [o.name for o in session.get_outputs()]
    fixed = {k: np.ascontiguousarray(v) for k, v in feeds.items()}

    def run() -> Any:
        return session.run(output_names, fixed)

    return run, None


def time_session(
    session: Any,
    provider: str,
    feeds: Mapping[str, np.ndarray],
    iterations: int | None = DEFAULT_ITERATIONS,
    warmup: int = 10,
    *,
    duration_s: float | None = None,
    io_binding: bool = True,
    device_id: int = 0,
) -> LatencyStats:
    """Time an already-open ONNX Runtime session exactly as `edgecnn bench` does (pre-bound inputs,
    `warmup` discarded calls, only the inference call between two `perf_counter_ns` reads, collector
    off) and return the same statistics. Give `iterations` or (with iterations=None) `duration_s`.

    To compare several runners side by side, prefer `session_runner` + `interleaved_rounds`."""
    if iterations is not None and duration_s is not None:
        raise EdgecnnError("give iterations or duration_s, not both")
    if iterations is None and duration_s is None:
        raise EdgecnnError("give iterations or duration_s")
    if iterations is not None and iterations <= 0:
        raise EdgecnnError(f"iterations must be >= 1, got {iterations}")
    fn = session_runner(session, provider, feeds, io_binding=io_binding, device_id=device_id)
    return LatencyStats.from_ns(timed_loop(fn, warmup, iterations, duration_s))
