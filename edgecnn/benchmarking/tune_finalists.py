"""`edgecnn tune`'s second pass: re-time the close finalists head to head and decide by paired rounds.

The first pass (tune.time_candidates) times every accepted candidate in `--rounds` interleaved rounds
and ranks them by median. Where two candidates are close, that ranking is noise on a machine whose
speed changes under it: the 2-vCPU VM of docs/bench-peers-amx.md flips between a fast and a slow mode
for seconds at a time, so one candidate's median can come from fast rounds and another's from slow
ones, and the order flips from run to run (three of sixteen bench-peers cells, all at 2 threads).

So per (batch, threads) cell, every candidate within FINALIST_MARGIN of the best (by its median or by
its paired ratio to the best, whichever is closer), at most MAX_FINALISTS of them, is timed again in
FINALIST_ROUND_FACTOR x `--rounds` interleaved rounds of their own, by the same `edgecnn bench` child
with the same threads and batch. Inside one round the candidates run back to back under the same
load, so the ratio of their round medians cancels the machine's mode; the decision is a tournament on
the median of those per-round ratios (benchmarking.speedup.median_round_ratio): the first-pass best
leads, each challenger that is faster than the current leader in the median round becomes the leader.
Comparing the finalists' medians instead would let a few rounds in the slow mode decide. Everything
behind the decision (finalists, per-round medians, ratios, rounds) goes into device.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.benchmarking.speedup import median_round_ratio
from edgecnn.benchmarking.tune_candidates import Candidate
from edgecnn.benchmarking.tune_plan import FINALIST_MARGIN, FINALIST_ROUND_FACTOR, MAX_FINALISTS, WARMUP_CALLS
from edgecnn.core.progress import Progress, Tracker
from edgecnn.runtime.session_config import SessionConfig


@dataclass(frozen=True)
class FinalistTiming:
    """What the second pass times with: tune's --rounds and --round-seconds, its session (device and
    runtime options) and where the test images are; the cells are (batch, threads) pairs."""

    cells: tuple[tuple[int, int], ...]
    rounds: int  # the first pass's: the second runs FINALIST_ROUND_FACTOR times as many
    round_seconds: float
    session: SessionConfig
    data_dir: Path | None


@dataclass(frozen=True)
class PairedDecision:
    """The tournament's outcome: the winner, each challenge (challenger / leader, the median of the
    per-round ratios: < 1 means the challenger was faster) and every finalist against the winner."""

    winner: str
    challenges: tuple[dict[str, Any], ...]
    ratio_to_winner: dict[str, float]


def paired_decision(order: Sequence[str], round_ms: dict[str, Sequence[float]]) -> PairedDecision:
    """Decide among `order` (the finalists, the first-pass best first: the first leader) from their
    per-round medians in the same interleaved rounds. A candidate whose rounds do not pair up with
    the leader's cannot win."""
    leader = order[0]
    challenges = []
    for challenger in order[1:]:
        ratio = median_round_ratio(round_ms[challenger], round_ms[leader])  # challenger / leader
        won = ratio is not None and ratio < 1.0
        challenges.append({"challenger": challenger, "leader": leader, "ratio": ratio, "won": won})
        leader = challenger if won else leader
    to_winner = {}
    for label in order:
        ratio = median_round_ratio(round_ms[label], round_ms[leader])
        if ratio is not None:
            to_winner[label] = ratio
    return PairedDecision(leader, tuple(challenges), to_winner)


@dataclass(frozen=True)
class CellDecision:
    """How the pick of one (batch, threads) cell was made. `rounds` == 0: one candidate was within the
    margin (or the device gives no rounds, GPUs), so the first pass decided alone."""

    batch: int
    threads: int
    first_pass_best: str
    finalists: tuple[str, ...]
    winner: str
    winner_ms: float  # its median in the pass that decided it
    rounds: int = 0
    round_ms: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per finalist, in round order
    p50_ms: dict[str, float] = field(default_factory=dict)  # per finalist, over the second pass
    challenges: tuple[dict[str, Any], ...] = ()
    ratio_to_winner: dict[str, float] = field(default_factory=dict)  # median of per-round ratios
    wall_s: float = 0.0


def finalists(cands: list[Candidate], batch: int, threads: int) -> list[Candidate]:
    """The accepted candidates of one cell within FINALIST_MARGIN of its best by median, or by the
    median of per-round ratios to it (first pass): the best, each other runtime's closest, then the
    rest closest first, at most MAX_FINALISTS."""
    timed = [c for c in cands if c.accepted and threads in c.latency_ms.get(batch, {})]
    timed.sort(key=lambda c: c.latency_ms[batch][threads])
    if not timed:
        return []
    best = timed[0]

    def closeness(c: Candidate) -> float:
        by_median = c.latency_ms[batch][threads] / best.latency_ms[batch][threads]
        base = best.round_ms.get(batch, {}).get(threads, ())
        paired = median_round_ratio(c.round_ms.get(batch, {}).get(threads, ()), base)
        return min(by_median, paired if paired is not None else by_median)

    close = sorted((c for c in timed[1:] if closeness(c) <= 1.0 + FINALIST_MARGIN), key=closeness)
    # Each runtime's closest first, then the rest: files one runtime runs with the same kernels (ORT's
    # INT8 recipes) are near-twins, and four of them must not crowd out another runtime's best (measured:
    # keras-convnet at 2 threads, batch 1, LiteRT's INT8 5th within the margin and the fastest in the check).
    firsts: dict[str, Candidate] = {}
    for c in close:
        if c.runtime != best.runtime:
            firsts.setdefault(c.runtime, c)
    rest = [c for c in close if all(c is not f for f in firsts.values())]
    return [best, *firsts.values(), *rest][:MAX_FINALISTS]


def _cell_config(bundle: Path, chosen: list[Candidate], cfg: FinalistTiming, batch: int, threads: int) -> Any:
    from edgecnn.benchmarking.bench_config import BenchConfig

    rounds = FINALIST_ROUND_FACTOR * cfg.rounds
    return BenchConfig(
        models=tuple(bundle / c.file for c in chosen),
        model_runtimes=tuple(c.bench_runtime for c in chosen),
        batch_sizes=(batch,),
        warmup=WARMUP_CALLS,
        duration_s=rounds * cfg.round_seconds,
        rounds=rounds,
        session=cfg.session,
        thread_counts=(threads,),
        inputs="real",
        data_dir=cfg.data_dir,
    )


def decide_cell(
    bundle: Path, cands: list[Candidate], cfg: FinalistTiming, batch: int, threads: int
) -> CellDecision:
    """One cell: the first pass's best alone, or its finalists re-timed in one bench child and decided
    by paired rounds."""
    import time

    from edgecnn.benchmarking.sweep import run_in_child

    chosen = finalists(cands, batch, threads)
    best = chosen[0]
    labels = tuple(c.label for c in chosen)
    if len(chosen) < 2:
        return CellDecision(batch, threads, best.label, labels, best.label, best.latency_ms[batch][threads])
    started = time.perf_counter()
    document = run_in_child(_cell_config(bundle, chosen, cfg, batch, threads))
    round_ms: dict[str, tuple[float, ...]] = {}
    p50: dict[str, float] = {}
    for cand, model in zip(chosen, document["models"], strict=True):
        row = next(r for r in model["results"] if int(r["batch"]) == batch)
        round_ms[cand.label] = tuple(float(v) for v in row["round_p50_ms"])
        p50[cand.label] = float(row["p50_ms"])
    decision = paired_decision(labels, round_ms)
    return CellDecision(
        batch=batch,
        threads=threads,
        first_pass_best=best.label,
        finalists=labels,
        winner=decision.winner,
        winner_ms=p50[decision.winner],
        rounds=len(next(iter(round_ms.values()))),
        round_ms=round_ms,
        p50_ms=p50,
        challenges=decision.challenges,
        ratio_to_winner=decision.ratio_to_winner,
        wall_s=time.perf_counter() - started,
    )


def retime_finalists(
    bundle: Path, cands: list[Candidate], cfg: FinalistTiming, progress: Progress | None = None
) -> list[CellDecision]:
    """Every (batch, threads) cell's decision, in the order given."""
    out = []
    with Tracker(progress, "tune finalists", len(cfg.cells), "finalists") as bar:
        for b, t in cfg.cells:
            bar.describe(f"re-timing the finalists, batch {b}, --threads {t}")
            out.append(decide_cell(bundle, cands, cfg, b, t))
            bar.advance()
    return out
