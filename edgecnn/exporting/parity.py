"""The parity gate: the FP32 ONNX graph must reproduce Keras on real test images, at batch 1 and at a
larger batch, before the export writes anything."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.exporting.export_config import PARITY_MAX_ABS_DIFF, ExportConfig
from edgecnn.exporting.report import Parity


def keras_predict(serve: Any, x: np.ndarray, batch: int) -> np.ndarray:
    """The model's raw outputs (probabilities or logits) from a `convert.keras_call` function, `batch`
    images at a time."""
    outs = []
    for start in range(0, len(x), batch):
        (scores,) = serve(x[start : start + batch]).values()
        outs.append(np.asarray(scores, dtype=np.float32))
    return np.concatenate(outs)


def parity_gate(
    serve: Any, session: Any, x_nhwc: np.ndarray, x_graph: np.ndarray, config: ExportConfig
) -> list[Parity]:
    """Keras vs ONNX Runtime on the same images, at batch 1 and at `parity_batch`, on the raw outputs:
    comparing logits after softmax would let near-uniform outputs (an untrained net) pass trivially.
    The tolerance is absolute for probabilities and relative to the largest |logit| above 1, the
    float32 rounding scale of a large output."""
    from edgecnn.runtime.inference import compare_probabilities, run_batches

    results = []
    n1 = min(config.parity_batch1_samples, len(x_nhwc))
    nb = min(config.parity_samples, len(x_nhwc))
    for batch, n in ((1, n1), (config.parity_batch, nb)):
        ref = keras_predict(serve, x_nhwc[:n], batch)
        got = run_batches(session, x_graph[:n], batch).scores
        agree = compare_probabilities(ref, got)
        scale = float(np.max(np.abs(ref)))
        passed = agree.max_abs_diff <= PARITY_MAX_ABS_DIFF * max(1.0, scale) and agree.top1_agreement == 1.0
        results.append(Parity(batch, n, agree.max_abs_diff, agree.top1_agreement, passed, scale))
    failed = [p for p in results if not p.passed]
    if failed:
        detail = "; ".join(
            f"batch {p.batch_size} on {p.n} images: max abs diff {p.max_abs_diff:.3g} "
            f"(limit {PARITY_MAX_ABS_DIFF:g} x max(1, |output|)), "
            f"top-1 agreement {p.top1_agreement * 100:.2f}%"
            for p in failed
        )
        raise EdgecnnError(f"parity gate failed, ONNX does not match Keras: {detail}; nothing was written")
    return results
