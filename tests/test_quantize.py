"""quantize: settings, calibration data checks, dynamic INT8, QDQ debugging and the accuracy search."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import edgecnn.exporting as qz
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import INPUT_NAME, read_metadata
from edgecnn.data import load_dataset
from edgecnn.runtime.inference import accuracy, predict_probabilities
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.sessions import open_cpu_session


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path):
    return load_dataset("mnist", mnist_dir)


@pytest.fixture(scope="module")
def fp32_path(exported_bundle) -> Path:
    return Path(exported_bundle.output_dir) / "model.onnx"


@pytest.fixture(scope="module")
def calib(mnist, fp32_path: Path) -> np.ndarray:
    return prepare_batch(mnist.x_train[:2000], read_metadata(fp32_path))


def test_config_validation() -> None:
    with pytest.raises(EdgecnnError, match="calibration method"):
        qz.QuantizationConfig(calibration_method="kl")
    with pytest.raises(EdgecnnError, match="calibration samples"):
        qz.QuantizationConfig(calibration_samples=0)
    with pytest.raises(EdgecnnError, match="weight type"):
        qz.QuantizationConfig(weight_type="int4")
    cfg = qz.QuantizationConfig()
    with pytest.raises(AttributeError):
        cfg.per_channel = False  # type: ignore[misc] - frozen
    assert cfg.to_dict()["float_op_types"] == ["Softmax"]


def test_candidate_order_is_unique_and_starts_with_the_users_setting() -> None:
    base = qz.QuantizationConfig(per_channel=False, calibration_method="entropy")
    cands = qz.candidate_configs(base, ["conv1", "conv2", "fc"])
    assert cands[0][1] == base
    keys = [(c.per_channel, c.calibration_method, c.nodes_to_exclude) for _, c in cands]
    assert len(keys) == len(set(keys)) == 7  # 3 methods x 2 granularities + first/last in float
    assert cands[-1][1].nodes_to_exclude == ("conv1", "fc")


def test_calibration_data_must_match_the_input(calib: np.ndarray) -> None:
    qz.check_calibration_images(calib, (28, 28, 1))
    with pytest.raises(EdgecnnError, match="calibration images are 28x28x1 but the model input is 1x28x28"):
        qz.check_calibration_images(calib, (1, 28, 28))
    with pytest.raises(EdgecnnError, match="float32"):
        qz.check_calibration_images(calib.astype(np.float64), (28, 28, 1))


def test_calibration_sample_is_seeded(calib: np.ndarray) -> None:
    a = qz.select_calibration_images(calib, 100, seed=0)
    b = qz.select_calibration_images(calib, 100, seed=0)
    c = qz.select_calibration_images(calib, 100, seed=1)
    assert a.shape == (100, 28, 28, 1) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_dynamic_quantization_makes_integer_convs(fp32_path: Path, tmp_path: Path) -> None:
    out = qz.quantize_dynamic_int8(fp32_path, tmp_path / "dyn.onnx", qz.QuantizationConfig())
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "ConvInteger" in ops  # why the CLI warns: this is the slow path on CPU
    assert out.stat().st_size < 0.35 * fp32_path.stat().st_size
    assert "ConvInteger" in qz.DYNAMIC_WARNING


def test_worst_layers_from_qdq_debugging(fp32_path: Path, calib: np.ndarray, tmp_path: Path) -> None:
    pre = qz.preprocess_for_quantization(fp32_path, tmp_path / "pre.onnx")
    cfg = qz.QuantizationConfig(per_channel=False, calibration_samples=200)
    q = qz.quantize_int8(fp32_path, tmp_path / "q.onnx", calib, INPUT_NAME, cfg, preprocessed=pre)
    worst = qz.worst_quantized_nodes(pre, q, calib[:64], INPUT_NAME, tmp_path, limit=3)
    compute = qz.quantizable_nodes(pre)
    assert 1 <= len(worst) <= 3
    assert all(name in compute and np.isfinite(sqnr) for name, sqnr in worst)
    assert [s for _, s in worst] == sorted(s for _, s in worst)


@pytest.mark.slow
def test_search_reports_every_attempt_when_the_bound_is_unreachable(
    fp32_path: Path, calib: np.ndarray, mnist, tmp_path: Path
) -> None:
    """A bound of -1 pp (INT8 must beat FP32 by a point) cannot be met: every setting is tried."""
    meta = read_metadata(fp32_path)
    x_test = prepare_batch(mnist.x_test, meta)
    session, _ = open_cpu_session(fp32_path)
    fp32_acc = accuracy(predict_probabilities(session, x_test), mnist.y_test)

    def evaluate(path: Path) -> float:
        s, _ = open_cpu_session(path)
        return accuracy(predict_probabilities(s, x_test), mnist.y_test)

    pre = qz.preprocess_for_quantization(fp32_path, tmp_path / "pre.onnx")
    found, cfg, attempts = qz.search_int8(
        fp32_path=fp32_path,
        preprocessed=pre,
        calibration_images=calib,
        input_name=INPUT_NAME,
        base=replace(qz.QuantizationConfig(), calibration_samples=300),
        max_drop_pp=-1.0,
        evaluate=evaluate,
        fp32_accuracy=fp32_acc,
        work_dir=tmp_path,
    )
    assert found is None and cfg is None
    settings = [a.settings for a in attempts]
    assert len(attempts) >= 8, settings
    assert any("entropy" in s for s in settings) and any("percentile" in s for s in settings)
    assert any("first/last" in s for s in settings) and any("worst layers" in s for s in settings)
    assert all(not a.within_bound for a in attempts)
    assert all(a.accuracy is not None and a.accuracy > 0.95 for a in attempts if not a.note)


@pytest.mark.slow
def test_auto_and_max_accuracy_drop_cli(exported_bundle, mnist_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "auto"
    args = [str(exported_bundle.source_model), "-o", str(out), "--data-dir", str(mnist_dir)]
    result = CliRunner().invoke(
        app,
        [
            "export",
            *args,
            "--quantize",
            "auto",
            "--max-accuracy-drop",
            "0.3",
            "--json",
            "--latency-rounds",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["selected"] in doc["variants"]
    kept = {k: v for k, v in doc["variants"].items() if v["kept"] and v["within_bound"] is not False}
    fastest = min(kept.values(), key=lambda v: v["latency_ms"]["1"])
    assert doc["selected"] == fastest["name"]
    assert doc["attempts"] and doc["attempts"][-1]["within_bound"]
    assert doc["variants"]["int8"]["accuracy_drop_pp"] <= 0.3


@pytest.fixture(scope="module")
def outlier_model(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model with one hidden unit scaled up 10^4 and its outgoing weights down 10^4.

    ReLU is positively homogeneous, so FP32 computes the same function, but that unit's activations
    dwarf the others: a shared per-tensor INT8 scale rounds the other 63 units to zero. A real-world
    failure mode (outlier channels) that per-channel weights or calibration choices cannot fix.
    """
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    model = keras.models.load_model(str(trained_run.model_path), compile=False)
    hidden, last = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-2:]
    w, b = hidden.get_weights()
    w2, b2 = last.get_weights()
    w[:, 0] *= 1e4
    b[0] *= 1e4
    w2[0, :] /= 1e4
    hidden.set_weights([w, b])
    last.set_weights([w2, b2])
    path = tmp_path_factory.mktemp("outlier") / "model.keras"
    model.save(str(path))
    return path


def test_bound_not_met_keeps_fp32_and_exits_non_zero(
    outlier_model: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    result = CliRunner().invoke(
        app,
        ["export", str(outlier_model), "-o", str(out), "--data-dir", str(mnist_dir), "--dataset", "mnist",
         "--quantize", "int8",
         "--max-accuracy-drop", "0.5", "--search-limit", "2", "--no-latency", "--eval-limit", "2000"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert (
        len(lines) == 1
        and "over --max-accuracy-drop 0.5 pp" in lines[0]
        and "FP32 model was kept" in lines[0]
    )
    assert "INT8 accuracy-aware search" in result.stdout  # the attempts are shown
    assert sorted(p.name for p in out.iterdir()) == [".edgecnn-output", "export.json", "model.onnx"]
    doc = json.loads((out / "export.json").read_text())
    assert doc["bound_met"] is False and doc["failure"]
    assert len(doc["attempts"]) == 2 and not any(a["within_bound"] for a in doc["attempts"])
    assert all(a["accuracy_drop_pp"] > 50 for a in doc["attempts"])  # the outliers wreck plain INT8
    assert doc["variants"]["int8"]["kept"] is False and doc["variants"]["int8"]["path"] is None
    assert doc["variants"]["fp32"]["accuracy"] > 0.95 and all(p["passed"] for p in doc["parity"])


def test_default_bound_marks_int8_outside_it_with_worst_layers(
    outlier_model: Path, mnist_dir: Path, tmp_path: Path
) -> None:
    """No --max-accuracy-drop: the default INT8 bound still applies (issue 23). The search runs; a file
    it cannot bring inside is kept but marked within_bound false (not null), in the table and in
    export.json, with the layers that lose the most (per-layer SQNR); the export does not fail."""
    from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP

    out = tmp_path / "bundle"
    result = CliRunner().invoke(
        app,
        ["export", str(outlier_model), "-o", str(out), "--data-dir", str(mnist_dir), "--dataset", "mnist",
         "--quantize", "int8",
         "--int8-recipes", "avx2", "--search-limit", "2", "--no-latency", "--eval-limit", "2000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "export.json").read_text())
    assert doc["max_accuracy_drop"] == DEFAULT_MAX_ACCURACY_DROP_PP and doc["bound_source"] == "default"
    assert doc["failure"] is None and doc["bound_met"] is False
    assert len(doc["attempts"]) == 2  # the search ran without an explicit bound
    for name in ("int8", "int8-avx2"):
        v = doc["variants"][name]
        assert v["within_bound"] is False and v["kept"] and Path(v["path"]).is_file(), name
        assert v["accuracy_drop_pp"] > DEFAULT_MAX_ACCURACY_DROP_PP
        worst = v["worst_layers"]
        assert worst and [w["sqnr_db"] for w in worst] == sorted(w["sqnr_db"] for w in worst)
        assert worst[0]["layer"].startswith("dense"), worst  # the layer with the outlier unit
    assert "search: none of" in " ".join(doc["variants"]["int8-avx2"]["notes"])
    assert doc["variants"]["fp32"]["within_bound"] is True
    assert "int8 ⚠" in result.stdout and "lowest SQNR: dense" in result.stdout


def test_search_recovers_an_outlier_model(outlier_model: Path, mnist_dir: Path, tmp_path: Path) -> None:
    """The full search: calibration choices fail, keeping the outlier layer in float (found with the
    QDQ debugging tools) succeeds."""
    from edgecnn.exporting import ExportConfig, export

    result = export(
        ExportConfig(
            model_path=outlier_model, output_dir=tmp_path / "b", quantize=("int8",), data_dir=mnist_dir,
            dataset="mnist",
            max_accuracy_drop=0.3, latency=False, eval_limit=2000,
        )
    )  # fmt: skip
    assert result.bound_met and result.failure is None
    attempts = result.attempts
    assert attempts[0].accuracy_drop_pp > 50 and attempts[-1].within_bound
    assert "worst layers" in attempts[-1].settings
    int8 = result.variants["int8"]
    assert int8.kept and int8.accuracy_drop_pp <= 0.3 and (tmp_path / "b" / "model.int8.onnx").is_file()


def test_int8_export_feeds_softmax_float_logits(exported_bundle) -> None:
    """quantize_int8's float_logits step: the last Gemm feeds Softmax without a Q/DQ pair between."""
    model = onnx.load(str(Path(exported_bundle.output_dir) / "model.int8.onnx"))
    producer = {o: n for n in model.graph.node for o in n.output}
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    assert softmax and all(producer[n.input[0]].op_type in ("Gemm", "MatMul") for n in softmax)
    assert qz.QuantizationConfig().to_dict()["float_logits"] is True
