"""bench-peers' cell arithmetic: the device pick against the fastest peer of each round, and the
best-rounds ratio that a VM flipping between a fast and a slow mode cannot fool."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peers_report import PICK_TAG, cell_ratios  # noqa: E402


def _stats(**rounds: list[float]) -> dict:
    return {
        tag.replace("_", "-"): {"round_medians_ms": ms, "median_ms": sorted(ms)[len(ms) // 2]}
        for tag, ms in rounds.items()
    }


def test_pick_against_the_fastest_peer_of_each_round() -> None:
    stats = _stats(
        tflite_int8=[1.0, 2.0, 1.0],  # round 2: the VM's slow mode hit TFLite's block
        tflite_fp32=[3.0, 3.0, 3.0],
        onnx_fp32=[4.0, 4.0, 4.0],
    )
    stats[PICK_TAG] = {"round_medians_ms": [1.1, 1.1, 2.2], "median_ms": 1.1, "file": "model.int8.onnx"}
    cell = cell_ratios(stats)
    assert cell["fastest_peer"] == "tflite-int8"
    assert cell["pick_vs_fastest_peer"] == pytest.approx(1.1)  # median of 1.1, 0.55, 2.2
    assert cell["pick_vs_fastest_peer_range"] == pytest.approx([0.55, 2.2])
    assert cell["pick_vs_fastest_peer_best_rounds"] == pytest.approx(1.1)  # 1.1 / 1.0
    assert cell["pick_vs_fp32"] == pytest.approx(0.275)
