"""Atomic writes, ONNX metadata round-trips, environment info and the CLI's error contract."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.environment import environment_info
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata, Normalization, read_metadata, write_metadata
from edgecnn.core.outputs import atomic_dir, atomic_path, atomic_write_json, to_jsonable


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_refuses_overwrite_without_force(tmp_path: Path) -> None:
    target = atomic_write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(EdgecnnError, match="--force"):
        atomic_write_json(target, {"a": 2}, force=False)
    assert json.loads(target.read_text()) == {"a": 1}


def test_atomic_dir_keeps_the_old_result_when_the_new_one_fails(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    with atomic_dir(bundle) as tmp:
        (tmp / "model.onnx").write_text("v1")
    with pytest.raises(EdgecnnError, match="already exists"):
        with atomic_dir(bundle):
            pass
    with pytest.raises(ValueError), atomic_dir(bundle, force=True) as tmp:
        (tmp / "model.onnx").write_text("v2")
        raise ValueError("interrupted")
    assert (bundle / "model.onnx").read_text() == "v1"
    with atomic_dir(bundle, force=True) as tmp:
        (tmp / "model.onnx").write_text("v2")
    assert (bundle / "model.onnx").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_to_jsonable_handles_numpy_paths_and_nan() -> None:
    import numpy as np

    doc = to_jsonable({"p": Path("/x"), "a": np.arange(2), "f": np.float32(0.5), "n": float("nan")})
    assert doc == {"p": "/x", "a": [0, 1], "f": 0.5, "n": None}


def _tiny_model() -> onnx.ModelProto:
    node = helper.make_node("Identity", ["input"], ["probabilities"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 28, 28, 1])],
    )
    return helper.make_model(graph)


def test_metadata_round_trips_through_an_onnx_file(tmp_path: Path) -> None:
    meta = ModelMetadata(
        input_shape=(28, 28, 1),
        layout="NCHW",
        class_labels=tuple(str(i) for i in range(10)),
        normalization=Normalization(scale=1 / 255, mean=(0.1307,), std=(0.3081,)),
        dataset="mnist",
        model_name="keras-convnet",
        variant="int8",
        macs_per_image=123,
    )
    model = write_metadata(_tiny_model(), meta)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    back = read_metadata(path)
    assert back is not None
    assert back.input_shape == (28, 28, 1) and back.layout == "NCHW"
    assert back.class_labels == meta.class_labels and back.normalization == meta.normalization
    assert back.graph_input_shape == (1, 28, 28)
    assert (back.dataset, back.model_name, back.variant, back.macs_per_image) == (
        "mnist",
        "keras-convnet",
        "int8",
        123,
    )


def test_model_without_edgecnn_metadata_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    onnx.save(_tiny_model(), path)
    assert read_metadata(path) is None


def test_garbage_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(EdgecnnError, match="not a readable ONNX model"):
        read_metadata(path)


def test_environment_info_reports_cpu_flags_and_versions() -> None:
    env = environment_info()
    assert env["hardware"]["cpu"]["logical_cores"] >= 1
    assert isinstance(env["hardware"]["cpu"]["flags"], list)
    assert "numpy" in env["versions"] and "edgecnn" in env["versions"]


def test_cli_version_and_help() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("edgecnn ")
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
