"""A graph `edgecnn optimize`d on another machine, whose ops this onnxruntime does not have: every runtime
command refuses it with edgecnn's own line before ONNX Runtime parses it, and `tune` skips it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from onnx import helper
from test_predict import SAMPLES, centroid_model
from typer.testing import CliRunner

from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import read_metadata, write_metadata
from edgecnn.runtime.target import TARGET_KEY, current_cpu_target

FOREIGN_LINE = "optimized for another machine"


def foreign_copy(portable: Path, out: Path) -> Path:
    """`portable` as if optimized on an ARM board with another ORT: its target names that machine and
    its graph holds a com.microsoft.nchwc op this build has not registered (ORT cannot load it)."""
    model = onnx.load(str(portable))
    graph = model.graph
    last = graph.node[-1]
    stale = last.output[0]
    last.output[0] = "pre_nchwc"
    graph.node.append(
        helper.make_node("ReorderNoSuchOp", ["pre_nchwc"], [stale], domain="com.microsoft.nchwc")
    )
    model.opset_import.append(helper.make_opsetid("com.microsoft.nchwc", 1))
    there = {
        **current_cpu_target(),
        "onnxruntime": "1.32.0",
        "machine": "aarch64",
        "isa": ["asimd", "asimddp"],
    }
    model.metadata_props.add(key=TARGET_KEY, value=json.dumps(there))
    onnx.save(model, str(out))
    return out


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("foreign")
    portable = centroid_model(root / "model.onnx", mnist_dir)
    return foreign_copy(portable, root / "model.int8.cpu.onnx")


def test_onnxruntime_itself_cannot_load_the_foreign_graph(foreign: Path) -> None:
    import onnxruntime as ort

    with pytest.raises(Exception, match="not a registered function/op"):
        ort.InferenceSession(str(foreign), providers=["CPUExecutionProvider"])


def test_every_runtime_command_refuses_it_with_edgecnns_line(
    foreign: Path, tmp_path: Path, mnist_dir: Path
) -> None:
    commands = {
        "eval": [
            "eval",
            str(foreign),
            "--data-dir",
            str(mnist_dir),
            "--limit",
            "50",
            "-o",
            str(tmp_path / "e"),
        ],
        "predict": ["predict", str(foreign), str(SAMPLES), "-o", str(tmp_path / "p.json")],
        "bench": ["bench", str(foreign), "--iterations", "5", "-o", str(tmp_path / "b")],
        "optimize": ["optimize", str(foreign), "-o", str(tmp_path / "again.cpu.onnx")],
    }
    for name, args in commands.items():
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 1, (name, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, r.stderr)
        assert FOREIGN_LINE in lines[0] and "edgecnn optimize" in lines[0], (name, lines[0])
        assert "aarch64 there" in lines[0] and "registered" not in lines[0], (name, lines[0])


def test_tune_skips_a_foreign_copy_in_the_bundle_with_a_note(foreign: Path, tmp_path: Path, mnist_dir: Path):
    from edgecnn.benchmarking.tune_candidates import bundle_files

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(foreign.parent / "model.onnx", bundle / "model.onnx")
    # Stamped like an export's INT8 file, so tune would otherwise take it as a candidate.
    model = onnx.load(str(foreign))
    meta = read_metadata(model)
    write_metadata(model, meta.__class__(**{**meta.__dict__, "extra": {"export_accuracy": "0.8"}}))
    onnx.save(model, str(bundle / foreign.name))
    notes: list[str] = []
    cands, _, _ = bundle_files(bundle, notes)
    assert [c.file for c in cands] == ["model.onnx"]
    assert len(notes) == 1 and foreign.name in notes[0] and FOREIGN_LINE in notes[0]
    with pytest.raises(EdgecnnError, match=FOREIGN_LINE):
        from edgecnn.runtime.sessions import open_cpu_session

        open_cpu_session(bundle / foreign.name)
