"""CUDA graphs: a replayed run must give what a normal run gives. A graph captures buffer addresses;
an input bound to the wrong buffer, or a capture that baked in a temporary, replays without error and
returns stale numbers. So the timed path compares a replay's outputs with a plain run's on the same
inputs before any timing, within the floating-point tolerance of the model's precision (the same
kernels run, but the capture may pick another cuDNN algorithm)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgecnn.core.errors import EdgecnnError

# (atol, rtol) per output dtype; FP16 outputs (or FP16 compute, see `fp16`) get FP16's.
FP32_TOLERANCE = (1e-4, 1e-3)
FP16_TOLERANCE = (2e-2, 2e-2)
REPLAY_RUNS = 3  # ORT runs once, captures on the next run, and replays from then on


def replay_difference(reference: Sequence[np.ndarray], replay: Sequence[np.ndarray]) -> float:
    if len(reference) != len(replay):
        raise EdgecnnError(f"CUDA-graph replay returned {len(replay)} outputs, a normal run {len(reference)}")
    worst = 0.0
    for ref, rep in zip(reference, replay, strict=True):
        if ref.shape != rep.shape:
            raise EdgecnnError(f"CUDA-graph replay output has shape {rep.shape}, a normal run {ref.shape}")
        if ref.size:
            worst = max(worst, float(np.max(np.abs(ref.astype(np.float64) - rep.astype(np.float64)))))
    return worst


def check_replay(
    reference: Sequence[np.ndarray], replay: Sequence[np.ndarray], name: str, fp16: bool = False
) -> float:
    """The largest absolute difference; a one-line EdgecnnError beyond the tolerance (or on NaN)."""
    worst = replay_difference(reference, replay)
    low = fp16 or any(np.asarray(r).dtype == np.float16 for r in reference)
    atol, rtol = FP16_TOLERANCE if low else FP32_TOLERANCE
    for ref, rep in zip(reference, replay, strict=True):
        if not np.allclose(rep, ref, atol=atol, rtol=rtol, equal_nan=False):
            raise EdgecnnError(
                f"{name}: the CUDA-graph replay differs from a normal run by {worst:.3g} (tolerance "
                f"atol {atol}, rtol {rtol}); its timings would be of a wrong computation"
            )
    return worst
