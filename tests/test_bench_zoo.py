"""`make bench-zoo` smoke test (slow): one hand-built model through the conformance run, end to end."""

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
