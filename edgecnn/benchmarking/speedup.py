"""Speed-up ratios against a baseline from per-round latencies (drift-robust, paired by round)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgecnn.core.errors import EdgecnnError


@dataclass(frozen=True)
class Speedup:
    """How much faster a model is than the baseline; > 1 means faster."""

    p50: float | None  # baseline p50 / model p50, over all samples
    mean: float | None  # baseline mean / model mean
    round_median: float | None  # median over rounds of baseline round p50 / model round p50
    rounds: int  # paired rounds behind round_median (0: not paired)


def ratio(base: float, value: float) -> float | None:
    return base / value if base > 0 and value > 0 and math.isfinite(base / value) else None


def speedup_vs_baseline(
    baseline_rounds_ms: Sequence[Sequence[float]],
    model_rounds_ms: Sequence[Sequence[float]],
    *,
    paired: bool = True,
) -> Speedup:
    """Ratios of a model's latencies to the baseline's, from per-round latency lists (ms).

    `p50`/`mean` pool all samples. `round_median` pairs round r of the baseline with round r of the
    model (taken back to back under the same load) and takes the median of those ratios, so a slow
    drift of the machine's speed, or one disturbed round, moves it little. With `paired=False`
    (samples from sequential runs, not rounds taken together) it is None."""
    base = [np.asarray(r, dtype=np.float64) for r in baseline_rounds_ms]
    model = [np.asarray(r, dtype=np.float64) for r in model_rounds_ms]
    base_all = np.concatenate(base) if base else np.empty(0)
    model_all = np.concatenate(model) if model else np.empty(0)
    if base_all.size == 0 or model_all.size == 0:
        raise EdgecnnError("no latencies to compare")
    p50 = ratio(float(np.median(base_all)), float(np.median(model_all)))
    mean = ratio(float(base_all.mean()), float(model_all.mean()))
    round_median, rounds = None, 0
    if paired:
        if len(base) != len(model):
            raise EdgecnnError(f"paired rounds differ in number: {len(base)} vs {len(model)}")
        ratios = [
            ratio(float(np.median(b)), float(np.median(m)))
            for b, m in zip(base, model, strict=True)
            if b.size and m.size
        ]
        ratios = [r for r in ratios if r is not None]
        if ratios:
            round_median, rounds = float(np.median(ratios)), len(ratios)
    return Speedup(p50=p50, mean=mean, round_median=round_median, rounds=rounds)


def median_round_ratio(
    base_round_p50_ms: Sequence[float], other_round_p50_ms: Sequence[float]
) -> float | None:
    """Median over paired rounds of base / other, from per-round medians (a ratio > 1: `other` is
    faster when the values are latencies). None when the rounds do not pair up or none is positive."""
    if not base_round_p50_ms or len(base_round_p50_ms) != len(other_round_p50_ms):
        return None
    ratios = [b / o for b, o in zip(base_round_p50_ms, other_round_p50_ms, strict=True) if b > 0 and o > 0]
    return float(np.median(ratios)) if ratios else None
