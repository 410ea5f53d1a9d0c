"""Shared fixtures: real MNIST, one really trained model and one really exported bundle per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST files (../shared/data/mnist or $EDGECNN_DATA_DIR). Tests never download."""
    candidates = [os.environ.get("EDGECNN_DATA_DIR"), str(ROOT.parent / "shared" / "data" / "mnist")]
    for cand in candidates:
        if cand and (Path(cand) / "train-images-idx3-ubyte.gz").exists():
            return Path(cand)
    pytest.fail("real MNIST not found: set EDGECNN_DATA_DIR or put it at ../shared/data/mnist")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path):
    """keras-convnet trained for one epoch on real MNIST (the train step under test)."""
    from edgecnn.training import TrainConfig, train

    out = tmp_path_factory.mktemp("train") / "run"
    return train(
        TrainConfig(
            model="keras-convnet",
            dataset="mnist",
            epochs=1,
            output_dir=out,
            data_dir=mnist_dir,
            seed=0,
        )
    )


@pytest.fixture(scope="session")
def exported_bundle(tmp_path_factory: pytest.TempPathFactory, trained_run, mnist_dir: Path):
    """The trained model exported to FP32 + INT8 + FP16 ONNX (the export step under test)."""
    from edgecnn.exporting import ExportConfig, export

    out = tmp_path_factory.mktemp("export") / "bundle"
    return export(
        ExportConfig(
            model_path=Path(trained_run.model_path),
            output_dir=out,
            quantize=("int8", "fp16"),
            data_dir=mnist_dir,
        )
    )
