"""`export --formats onnx,tflite` on a really trained MNIST model: the .tflite files, their metadata read
back without TensorFlow, and the gates (parity with Keras, accuracy on the test set, the bound)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError

pytest.importorskip("ai_edge_litert")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tflite_bundle(tmp_path_factory: pytest.TempPathFactory, trained_run, mnist_dir: Path):
    from edgecnn.exporting import ExportConfig, export

    return export(
        ExportConfig(
            model_path=Path(trained_run.model_path),
            output_dir=tmp_path_factory.mktemp("tfl") / "bundle",
            quantize=("int8", "fp16"),
            max_accuracy_drop=0.3,
            data_dir=mnist_dir,
            formats=("onnx", "tflite"),
            latency_rounds=3,
        )
    )


READ_WITHOUT_TF = """
import json, sys
sys.modules["tensorflow"] = None  # any import of it fails
from edgecnn.core.tflite_metadata import read_tflite_props
print(json.dumps({p: read_tflite_props(p) for p in sys.argv[1:]}))
"""


@pytest.mark.slow
def test_tflite_files_carry_metadata_readable_without_tensorflow(tflite_bundle) -> None:
    files = {
        name: tflite_bundle.variants[name].path for name in ("tflite-fp32", "tflite-int8", "tflite-fp16")
    }
    assert [p.name for p in files.values() if p is not None] == [
        "model.tflite", "model.int8.tflite", "model.fp16.tflite"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", READ_WITHOUT_TF, *map(str, files.values())],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    props = json.loads(out.stdout)
    onnx_meta = json.loads(tflite_bundle.json_path.read_text())
    for name, path in files.items():
        got = props[str(path)]
        assert got["edgecnn.variant"] == name and got["edgecnn.layout"] == "NHWC"
        assert json.loads(got["edgecnn.class_labels"]) == list(onnx_meta["class_labels"])
        assert float(got["edgecnn.export_accuracy"]) == tflite_bundle.variants[name].accuracy


@pytest.mark.slow
def test_tflite_accuracy_is_what_the_file_scores(tflite_bundle, mnist_dir: Path) -> None:
    """The reported accuracy is re-measured here from the file alone (metadata + LiteRT), and the gates
    hold: FP32 matched Keras at both parity batches, INT8 is full-integer, every kept file within 0.3 pp."""
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.core.tflite_metadata import read_tflite_metadata
    from edgecnn.data import load_dataset
    from edgecnn.runtime.preprocess import prepare_batch

    fp32 = tflite_bundle.variants["tflite-fp32"]
    assert all(p["passed"] and p["max_abs_diff"] < 1e-4 for p in fp32.settings["parity"])
    mnist = load_dataset("mnist", mnist_dir, download=False)
    x_test, y_test = mnist.x_test, mnist.y_test
    for name in ("tflite-int8", "tflite-fp32"):
        report = tflite_bundle.variants[name]
        assert report.kept and report.within_bound and report.accuracy_drop_pp <= 0.3
        meta = read_tflite_metadata(report.path)
        interp = Interpreter(model_path=str(report.path))
        x = prepare_batch(x_test[:1000], meta)
        inp = interp.get_input_details()[0]["index"]
        interp.resize_tensor_input(inp, list(x.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp, x)
        interp.invoke()
        probs = interp.get_tensor(interp.get_output_details()[0]["index"])
        assert abs(float(np.mean(probs.argmax(1) == y_test[:1000])) - report.accuracy) < 0.02
        if name == "tflite-int8":
            types = {t["dtype"].__name__ for t in interp.get_tensor_details()}
            assert "int8" in types


@pytest.mark.slow
def test_tflite_parity_gate_catches_another_model(trained_run, mnist_dir: Path, tmp_path: Path) -> None:
    """A .tflite that is not the Keras model (an untrained twin) fails the parity gate."""
    from edgecnn.core.tfcompat import import_keras
    from edgecnn.exporting.export_config import ExportConfig
    from edgecnn.exporting.formats.tflite import convert, open_tflite, tflite_parity
    from edgecnn.exporting.graph.convert import keras_call

    keras = import_keras()
    model = keras.models.load_model(trained_run.model_path, compile=False)
    twin = keras.models.clone_model(model)  # same architecture, fresh weights
    (tmp_path / "twin.tflite").write_bytes(convert(twin, (28, 28, 1), "probabilities", "fp32"))
    other = open_tflite(tmp_path / "twin.tflite")
    serve, _ = keras_call(model, (28, 28, 1))
    x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    config = ExportConfig(model_path=trained_run.model_path, output_dir=Path("unused"))
    with pytest.raises(EdgecnnError, match="TFLite FP32 does not match Keras"):
        tflite_parity(serve, other, x, config)
    (tmp_path / "same.tflite").write_bytes(convert(model, (28, 28, 1), "probabilities", "fp32"))
    same = open_tflite(tmp_path / "same.tflite")
    assert all(p.passed for p in tflite_parity(serve, same, x, config))


@pytest.mark.slow
def test_nchw_export_scores_and_times_its_nhwc_tflite(trained_run, mnist_dir: Path, tmp_path: Path) -> None:
    """--nchw makes the ONNX graph NCHW; the .tflite stays NHWC and is scored on NHWC images (it once
    was fed NCHW-transposed NHWC images) and timed on the ONNX graph's images transposed for it."""
    from edgecnn.exporting import ExportConfig, export

    result = export(
        ExportConfig(
            model_path=Path(trained_run.model_path), output_dir=tmp_path / "bundle", quantize=(),
            nchw=True, data_dir=mnist_dir, formats=("onnx", "tflite"), eval_limit=1000, latency_rounds=2,
        )
    )  # fmt: skip
    fp32, tfl = result.variants["fp32"], result.variants["tflite-fp32"]
    assert tfl.kept and abs(tfl.accuracy - fp32.accuracy) < 0.002 and tfl.top1_agreement > 0.99
    assert tfl.latency_ms and all(ms > 0 for ms in tfl.latency_ms.values())


def test_formats_are_checked() -> None:
    from edgecnn.exporting.export_config import ExportConfig

    with pytest.raises(EdgecnnError, match="unknown --formats value 'coreml'"):
        ExportConfig(model_path=Path("m.keras"), output_dir=Path("b"), formats=("onnx", "coreml"))
    with pytest.raises(EdgecnnError, match="must include onnx"):
        ExportConfig(model_path=Path("m.keras"), output_dir=Path("b"), formats=("tflite",))
    cfg = ExportConfig(model_path=Path("m.keras"), output_dir=Path("b"), formats=("ONNX", "tflite", "tflite"))
    assert cfg.formats == ("onnx", "tflite")
    assert (
        ExportConfig(model_path=Path("m.keras"), output_dir=Path("b"), formats="onnx,tflite").formats
        == cfg.formats
    )


@pytest.mark.slow
def test_tune_picks_across_runtimes_and_the_pick_runs_in_its_runtime(tflite_bundle, mnist_dir: Path) -> None:
    """A real tune over ORT and LiteRT candidates of the real bundle: the pick is the fastest of all
    measured (file, runtime, threads), whichever runtime it is. Then the same measured candidates with
    the ORT ones slowed 10x (a device where ORT loses): the pick is the fastest LiteRT file, device.json
    records the runtime, and opening the bundle runs that file in LiteRT and says so."""
    from dataclasses import replace

    from edgecnn.benchmarking.tune import TuneConfig, choose, tune
    from edgecnn.core.outputs import atomic_write_json
    from edgecnn.runtime.device_record import DEVICE_JSON, pick_for
    from edgecnn.runtime.loaded_model import load_model
    from edgecnn.runtime.session_config import SessionConfig

    bundle = tflite_bundle.output_dir
    result = tune(TuneConfig(bundle=bundle, batch_sizes=(64,), thread_counts=(1,), rounds=2,
                             data_dir=mnist_dir, runtime_list=("ort", "litert"), force=True))  # fmt: skip
    timed = [c for c in result.candidates if c.accepted]
    assert {c.runtime for c in timed} == {"ort", "litert"} and all(c.latency_ms[64] for c in timed)
    fastest = min(timed, key=lambda c: c.latency_ms[64][1])
    pick = result.picks[64]
    assert (pick["file"], pick["runtime"]) == (fastest.file, fastest.runtime)
    assert pick["p50_ms"] <= pick["fp32_p50_ms"]  # never slower than the bundle's ORT FP32

    slowed = [replace(c, latency_ms={64: {1: c.latency_ms[64][1] * (10 if c.runtime == "ort" else 1)}})
              for c in result.candidates]  # fmt: skip
    picks = choose(slowed, (64,))
    best_litert = min((c for c in timed if c.runtime == "litert"), key=lambda c: c.latency_ms[64][1])
    assert (picks[64]["file"], picks[64]["runtime"]) == (best_litert.file, "litert")
    record = {**result.to_document(), "picks": {"64": picks[64]}}
    atomic_write_json(bundle / DEVICE_JSON, record, force=True)
    assert pick_for(bundle, 64).runtime == "litert"
    loaded = load_model(bundle, SessionConfig(), batch_size=64)
    assert loaded.path.suffix == ".tflite" and loaded.session.runtime == "litert"
    assert loaded.provider.startswith("litert") and "in LiteRT" in loaded.assumptions[0]
