"""bench-peers' check of tune: the pick against the fastest accurate candidate of each round, each
runtime's best, ORT FP32, and the best-rounds ratio that a VM flipping between a fast and a slow mode
cannot fool."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peers_report import FP32_LABEL, check_cell  # noqa: E402

LITERT_INT8 = "model.int8.tflite @ litert"
OV_BF16 = "model.onnx @ openvino:bf16"


def _stats(rounds: dict[str, list[float]]) -> dict:
    return {t: {"round_medians_ms": ms, "median_ms": sorted(ms)[len(ms) // 2]} for t, ms in rounds.items()}


def _cands(**acc: float) -> list[dict]:
    runtime = {FP32_LABEL: "ort", "model.int8.onnx": "ort", LITERT_INT8: "litert", OV_BF16: "openvino"}
    return [{"label": t, "runtime": runtime[t], "accuracy": a} for t, a in acc.items()]


ROUNDS = {
    LITERT_INT8: [1.0, 2.0, 1.0],  # round 2: the VM's slow mode hit LiteRT's block
    OV_BF16: [3.0, 3.0, 3.0],
    FP32_LABEL: [4.0, 4.0, 4.0],
    "model.int8.onnx": [1.1, 1.1, 2.2],
}
ACC = {FP32_LABEL: 0.99, "model.int8.onnx": 0.99, LITERT_INT8: 0.989, OV_BF16: 0.99}


def test_pick_against_the_fastest_of_each_round_and_each_runtime() -> None:
    cell = check_cell(_stats(ROUNDS), _cands(**ACC), pick="model.int8.onnx")
    assert cell["fastest"] == LITERT_INT8
    assert cell["pick_vs_fastest"] == pytest.approx(1.1)  # per round: 1.1/1.0, 1.1/1.1 (itself), 2.2/1.0
    assert cell["pick_vs_fastest_range"] == pytest.approx([1.0, 2.2])
    assert cell["pick_vs_fastest_best_rounds"] == pytest.approx(1.1)  # 1.1 / 1.0
    assert cell["pick_vs_ort_fp32"] == pytest.approx(0.275)
    assert cell["best_by_runtime"]["ort"]["label"] == "model.int8.onnx"
    assert cell["best_by_runtime"]["openvino"]["median_ms"] == 3.0
    assert cell["ort_best_vs_fastest"] == pytest.approx(1.1)
    assert not cell["meets_target"] and not cell["meets_target_best_rounds"]


def test_inaccurate_candidates_are_not_the_bar_and_not_a_valid_pick() -> None:
    acc = {**ACC, LITERT_INT8: 0.985}  # 0.5 pp below FP32: outside the 0.3 pp bound
    cell = check_cell(_stats(ROUNDS), _cands(**acc), pick="model.int8.onnx")
    assert cell["fastest"] == "model.int8.onnx" and cell["meets_target"]
    assert "litert" not in cell["best_by_runtime"]
    assert not check_cell(_stats(ROUNDS), _cands(**acc), pick=LITERT_INT8)["meets_target"]
