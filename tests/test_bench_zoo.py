"""`make bench-zoo` smoke tests (slow): one hand-built model and one trained user model through the
conformance run, end to end. The fast, one-per-fix tests of the user models are in test_user_models.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_zoo_one_small_model(mnist_dir: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_zoo

    argv = ["--models", "SeparableConvNet", "--size", "48", "--rounds", "3", "--data-dir", str(mnist_dir)]
    assert bench_zoo.main([*argv, "--output", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "bench_zoo.json").read_text())["rows"]
    assert row["ok"] and row["parity_ok"] and row["raw_pixels"] and row["output_kind"] == "logits"
    assert set(row["size_bytes"]) == {"fp32", "int8", "fp16"}
    assert "SeparableConvNet" in (tmp_path / "bench_zoo.md").read_text()


@pytest.mark.slow
def test_bench_zoo_trained_user_model(mnist_dir: Path, tmp_path: Path) -> None:
    """A Normalization model trained on MNIST: FP32 = Keras, INT8 within the default bound."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_zoo

    argv = ["--models", "norm-explicit", "--data-dir", str(mnist_dir), "--output", str(tmp_path)]
    assert bench_zoo.main(argv) == 0
    (row,) = json.loads((tmp_path / "bench_zoo.json").read_text())["rows"]
    assert row["ok"] and row["parity_ok"] and row["contract"] == "model"
    acc = row["accuracy"]
    assert row["keras_accuracy"] > 0.9 and abs(acc["fp32"] - row["keras_accuracy"]) < 1e-4
    assert row["int8_within_bound"] is True and row["int8_setting"]
    assert abs(acc["fp16"] - acc["fp32"]) < 0.002
    assert "norm-explicit" in (tmp_path / "bench_zoo.md").read_text()
