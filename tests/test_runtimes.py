"""Runtimes as backends (runtime.backends): OpenVINO and LiteRT run real exported MNIST models through
eval, predict and bench beside ONNX Runtime, with their placement in their own terms; bf16 accuracy is
measured; a runtime that is not installed is one line naming its extra."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecnn.benchmarking import BenchConfig, bench
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import PREFIX
from edgecnn.evaluation import EvalConfig, evaluate
from edgecnn.runtime.backends.litert import delegated_ops
from edgecnn.runtime.backends.registry import BACKENDS, open_model_file, runtime_for_file
from edgecnn.runtime.session_config import SessionConfig, unsupported_precision

ROOT = Path(__file__).resolve().parents[1]
EVAL_IMAGES = 2000
# OpenVINO f32 and ORT run the same float graph with different kernels: at most a few images flip.
SAME_GRAPH_PP = 0.1


def keras_to_tflite(keras_path: Path, onnx_path: Path, out: Path) -> Path:
    """A real .tflite of the trained Keras model (TensorFlow's converter: tests may use TF, the runtime
    side may not), carrying the same edgecnn metadata as the exported .onnx."""
    import keras
    import onnx
    import tensorflow as tf

    from edgecnn.core.tflite_metadata import write_tflite_metadata

    converter = tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(keras_path))
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props if p.key.startswith(PREFIX)}
    out.write_bytes(write_tflite_metadata(converter.convert(), props))
    return out


@pytest.fixture(scope="module")
def fp32(exported_bundle) -> Path:
    return Path(exported_bundle.output_dir) / "model.onnx"


@pytest.fixture(scope="module")
def tflite(tmp_path_factory: pytest.TempPathFactory, trained_run, fp32: Path) -> Path:
    return keras_to_tflite(
        Path(trained_run.model_path), fp32, tmp_path_factory.mktemp("tfl") / "model.tflite"
    )


def _eval(model: Path, mnist_dir: Path, out: Path, **session: object):
    return evaluate(
        EvalConfig(
            model=model,
            data_dir=mnist_dir,
            limit=EVAL_IMAGES,
            plot=False,
            output_dir=out,
            session=SessionConfig(**session),  # type: ignore[arg-type]
        )  # fmt: skip
    )


@pytest.fixture(scope="module")
def ort_eval(fp32: Path, mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return _eval(fp32, mnist_dir, tmp_path_factory.mktemp("e") / "ort", threads=1)


def test_openvino_eval_matches_ort_on_a_real_export(fp32, mnist_dir, tmp_path, ort_eval) -> None:
    ov = _eval(fp32, mnist_dir, tmp_path / "ov", runtime="openvino", threads=1)
    assert abs(ov.accuracy - ort_eval.accuracy) * 100 <= SAME_GRAPH_PP
    doc = json.loads((tmp_path / "ov" / "eval.json").read_text())
    assert doc["runtime"]["runtime"] == "openvino" and doc["runtime"]["precision"] == "fp32"
    assert doc["runtime"]["runtime_version"] == BACKENDS["openvino"].version()
    assert doc["runtime"]["threads"] == 1 and doc["runtime"]["device"] == "openvino:CPU"
    placement = doc["placement"]
    assert placement["layers_total"] > 0 and set(placement["by_precision"]) <= {"f32", "i32", "i64"}
    assert sum(placement["by_precision"].values()) == placement["layers_total"]
    assert doc["config"]["session"]["runtime"] == "openvino"
    ort_doc = json.loads((Path(ort_eval.output_dir) / "eval.json").read_text())
    assert ort_doc["runtime"]["runtime"] == "ort" and ort_doc["placement"]["nodes_total"] > 0


@pytest.mark.skipif(unsupported_precision("bf16") is not None, reason="this CPU has no AMX/AVX512_BF16")
def test_openvino_bf16_accuracy_is_measured(fp32, mnist_dir, tmp_path, ort_eval) -> None:
    bf16 = _eval(fp32, mnist_dir, tmp_path / "bf16", runtime="openvino", precision="bf16")
    doc = bf16.to_dict()
    assert doc["runtime"]["precision"] == "bf16"
    # The compiled model really runs layers in bf16, and the accuracy is what those layers computed.
    assert doc["placement"]["by_precision"].get("bf16", 0) > 0
    assert doc["num_images"] == EVAL_IMAGES and abs(bf16.accuracy - ort_eval.accuracy) < 0.01


def test_bf16_refused_with_a_reason_where_the_cpu_lacks_it() -> None:
    why = unsupported_precision("bf16", {"avx2", "avx512f"})
    assert why is not None and "AMX_BF16" in why and "AVX512_BF16" in why
    assert unsupported_precision("bf16", {"amx_bf16"}) is None
    assert unsupported_precision("fp32", set()) is None
    with pytest.raises(EdgecnnError, match="OpenVINO's hint"):
        SessionConfig(precision="fp32")  # ORT on the CPU runs each file at its own precision
    with pytest.raises(EdgecnnError, match="--device cpu"):
        SessionConfig(runtime="litert", device="cuda")


def test_litert_runs_a_real_tflite_with_its_metadata(tflite, mnist_dir, tmp_path, ort_eval) -> None:
    result = _eval(tflite, mnist_dir, tmp_path / "tfl", threads=1)  # .tflite -> litert by itself
    doc = result.to_dict()
    assert doc["runtime"]["runtime"] == "litert" and doc["runtime"]["device"] == "litert:XNNPACK"
    assert doc["model"]["has_edgecnn_metadata"] and doc["model"]["dataset"] == "mnist"
    # The same trained network as the ONNX export: the same answers up to float rounding.
    assert abs(result.accuracy - ort_eval.accuracy) * 100 <= SAME_GRAPH_PP
    placement = doc["placement"]
    assert 0 < placement["xnnpack_ops"] <= placement["ops_total"] and placement["delegate_partitions"] >= 1
    assert "XNNPACK" in placement["summary"]


def test_delegated_ops_follow_each_partition() -> None:
    ops = [
        {"index": 0, "op_name": "CONV_2D", "inputs": [0, 1], "outputs": [2]},
        {"index": 1, "op_name": "SHAPE", "inputs": [2], "outputs": [3]},
        {"index": 2, "op_name": "RESHAPE", "inputs": [2, 3], "outputs": [4]},
        {"index": 3, "op_name": "FULLY_CONNECTED", "inputs": [4, 5], "outputs": [6]},
        {"index": 4, "op_name": "DELEGATE", "inputs": [0, 1], "outputs": [2]},
        {"index": 5, "op_name": "DELEGATE", "inputs": [4, 5], "outputs": [6]},
    ]
    assert delegated_ops(ops) == ({0, 3}, 2)


def test_bench_times_every_runtime_in_the_same_rounds(fp32, tflite, tmp_path) -> None:
    config = BenchConfig(
        models=(fp32, fp32, tflite), model_runtimes=("ort", "openvino", "litert"), batch_sizes=(1, 8),
        iterations=20, rounds=4, warmup=2, inputs="random", thread_counts=(1,), output_dir=tmp_path / "b",
    )  # fmt: skip
    doc = json.loads((Path(bench(config).files["json"])).read_text())
    runtimes = [m["runtime"]["runtime"] for m in doc["models"]]
    assert runtimes == ["ort", "openvino", "litert"] and doc["interleaved"] is True
    for m in doc["models"]:
        assert m["placement"]["summary"] and m["runtime"]["threads"] == 1
        assert [r["rounds"] for r in m["results"]] == [4, 4] and all(r["p50_ms"] > 0 for r in m["results"])
    assert (
        doc["models"][1]["runtime"]["precision"] == "fp32"
        and doc["models"][0]["provider"] == "CPUExecutionProvider"
    )


def test_predict_cli_takes_runtime_and_tflite(fp32, tflite, tmp_path) -> None:
    samples = ROOT / "samples"
    for args in (
        ["predict", str(fp32), str(samples), "--runtime", "openvino"],
        ["predict", str(tflite), str(samples)],
    ):
        out = tmp_path / f"p{len(list(tmp_path.iterdir()))}.json"
        r = CliRunner().invoke(app, [*args, "-o", str(out), "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(out.read_text())
        assert doc["runtime"]["runtime"] in ("openvino", "litert") and doc["summary"]["images"] > 0


def test_wrong_runtime_for_a_file_is_one_line(tflite, fp32) -> None:
    with pytest.raises(
        EdgecnnError, match=r"--runtime ort runs \.onnx files, not \.tflite.*--runtime litert"
    ):
        runtime_for_file(tflite, "ort")
    assert runtime_for_file(tflite) == "litert" and runtime_for_file(fp32) == "ort"
    r = CliRunner().invoke(app, ["eval", str(fp32), "--runtime", "litert"])
    assert r.exit_code == 1 and r.output.strip().startswith("error: --runtime litert runs .tflite files")
    r = CliRunner().invoke(app, ["eval", str(fp32), "--precision", "bf16"])
    assert r.exit_code == 1 and "OpenVINO's hint" in r.output


@pytest.mark.parametrize(
    "runtime, module, line",
    [
        ("openvino", "openvino", "OpenVINO is not installed: pip install 'edgecnn[openvino]'"),
        ("litert", "ai_edge_litert.interpreter", "LiteRT is not installed: pip install 'edgecnn[litert]'"),
    ],
)
def test_a_missing_runtime_is_one_line_naming_its_extra(
    runtime, module, line, fp32, tflite, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    assert BACKENDS[runtime].missing() == line
    model = tflite if runtime == "litert" else fp32
    r = CliRunner().invoke(app, ["eval", str(model), "--runtime", runtime, "-o", str(tmp_path / "e")])
    assert r.exit_code == 1 and r.output.strip() == f"error: {line}"
    with pytest.raises(EdgecnnError, match="not installed"):
        open_model_file(model, SessionConfig(runtime=runtime))
    r = CliRunner().invoke(app, ["doctor", "--json"])
    assert r.exit_code == 0
    listed = {x["runtime"]: x for x in json.loads(r.stdout[r.stdout.index("{") :])["runtimes"]}
    assert listed[runtime]["installed"] is False and listed[runtime]["missing"] == line
    assert listed["ort"]["installed"] and "cpu" in listed["ort"]["devices"]


def test_orts_own_bench_options_are_refused_for_other_runtimes(fp32, tflite) -> None:
    """OpenVINO/LiteRT models are timed through their bound runner and not by ORT's profiler: an option
    that would not apply to them is one line, not a run that silently ignores it."""
    with pytest.raises(EdgecnnError, match="--no-io-binding is ONNX Runtime's"):
        BenchConfig(models=(fp32, tflite), io_binding=False)
    with pytest.raises(EdgecnnError, match="--no-io-binding is ONNX Runtime's"):
        BenchConfig(models=(fp32,), io_binding=False, session=SessionConfig(runtime="openvino"))
    with pytest.raises(EdgecnnError, match="--op-profile reads ONNX Runtime's profiler"):
        BenchConfig(models=(fp32, fp32), model_runtimes=("ort", "openvino"), op_profile=True)
    assert not BenchConfig(models=(fp32,), io_binding=False).io_binding  # ORT alone takes it


def test_runners_are_the_inference_alone(fp32, tflite) -> None:
    x = np.zeros((4, 28, 28, 1), np.float32)
    for path, runtime in ((fp32, "openvino"), (tflite, "litert"), (fp32, "ort")):
        model = open_model_file(path, SessionConfig(runtime=runtime, threads=1))
        run = model.runner(x)
        run()
        assert model.run(x).shape == (4, 10) and model.describe()["runtime"] == runtime


def test_bench_cli_takes_a_runtime_per_model(fp32, tflite, tmp_path) -> None:
    """FILE@RUNTIME[:PRECISION] on the command line fills model_runtimes: one .onnx in ORT and in OpenVINO
    beside a .tflite (LiteRT, its own runtime) in one interleaved run, each row named by its runtime."""
    out = tmp_path / "b"
    args = [f"{fp32}@ort", f"{fp32}@openvino:fp32", str(tflite)]
    r = CliRunner().invoke(
        app,
        ["bench", *args, "--batch", "2", "-n", "4", "--rounds", "2", "--warmup", "1", "--inputs", "random",
         "--threads", "1", "-o", str(out), "--json"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "bench.json").read_text())
    assert doc["config"]["model_runtimes"] == ["ort", "openvino:fp32", ""]
    assert [(m["runtime"]["runtime"], m["runtime"]["precision"]) for m in doc["models"]] == [
        ("ort", None), ("openvino", "fp32"), ("litert", None)
    ]  # fmt: skip
    assert [m["name"] for m in doc["models"]] == ["model.onnx@ort", "model.onnx@openvino:fp32", tflite.name]


def test_model_argument_suffix_rule(fp32, tmp_path) -> None:
    """The suffix is read only when the whole argument is not an existing path: a file or folder whose
    name holds '@' is still itself."""
    from edgecnn.runtime.session_config import parse_model_argument

    odd = tmp_path / "run@openvino"
    odd.mkdir()
    (odd / "model.onnx").write_bytes(fp32.read_bytes())
    named = tmp_path / "model.onnx@ort"
    named.write_bytes(b"x")
    assert parse_model_argument(str(named)) == (named, "")  # exists: the suffix is part of its name
    assert parse_model_argument(str(odd)) == (odd, "")
    assert parse_model_argument(f"{odd}/model.onnx@openvino:bf16") == (odd / "model.onnx", "openvino:bf16")
    assert parse_model_argument(f"{odd}/model.onnx") == (odd / "model.onnx", "")
    assert parse_model_argument("a@b/model.onnx") == (Path("a@b/model.onnx"), "")  # not a suffix
    for arg, says in (
        (f"{fp32}@tensorflow", "unknown runtime 'tensorflow'; choose one of ort, openvino, litert"),
        (f"{fp32}@openvino:fp64", "unknown precision 'fp64'; choose one of fp32, fp16, bf16, int8"),
    ):
        with pytest.raises(EdgecnnError, match=says):
            parse_model_argument(arg)
    for arg, says in (
        (f"{fp32}@ort:bf16", "@ort:bf16: --precision is OpenVINO's hint"),
        (f"{fp32}@litert", "--runtime litert runs .tflite files, not .onnx"),
        (f"{fp32}@cuda", "unknown runtime 'cuda'"),
        (f"{odd}/model.onnx@ort", None),
    ):
        r = CliRunner().invoke(app, ["bench", arg, "-n", "2", "--warmup", "0", "-o", str(tmp_path / "o")])
        if says is None:
            assert r.exit_code == 0, r.output
            continue
        lines = r.output.strip().splitlines()
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0]
    help_text = " ".join(CliRunner().invoke(app, ["bench", "--help"], env={"COLUMNS": "300"}).output.split())
    assert "model.onnx@openvino:bf16" in help_text and "not an existing path" in help_text


@pytest.mark.parametrize("command", ["predict", "eval", "bench", "optimize", "tune"])
def test_a_missing_model_path_says_it_does_not_exist(command: str, tmp_path) -> None:
    """The file check comes before the file kind: `predict nope` said "edgecnn runs .onnx, .tflite files,
    not this file"."""
    args = [command, str(tmp_path / "nope")] + ([str(ROOT / "samples")] if command == "predict" else [])
    out = {"predict": ["-o", str(tmp_path / "p.json")], "tune": []}.get(
        command, ["-o", str(tmp_path / "out")]
    )
    r = CliRunner().invoke(app, [*args, *out])
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1, r.output
    assert "nope does not exist" in lines[0] and "edgecnn runs" not in lines[0]


@pytest.mark.parametrize(
    ("command", "table"),
    [
        ("bench", "edgecnn.runtime.session_config:RUNTIMES"),
        ("eval", "edgecnn.runtime.session_config:PRECISIONS"),
        ("predict", "edgecnn.runtime.session_config:DEVICES"),
        ("bench", "edgecnn.runtime.session_config:GRAPH_OPTIMIZATION_LEVELS"),
        ("tune", "edgecnn.benchmarking.tune:TUNE_DEVICES"),
        ("export", "edgecnn.exporting.export_config:QUANTIZE_CHOICES"),
        ("export", "edgecnn.exporting.export_config:FORMATS"),
        ("export", "edgecnn.exporting.quantization.quant_config:CALIBRATION_METHODS"),
        ("compare", "edgecnn.benchmarking.compare:METRICS"),
        ("train", "edgecnn.models.spec:OPTIMIZERS"),
    ],
)
def test_help_lists_names_from_their_table(command: str, table: str) -> None:
    """Each list of names in a help text is joined from the table that validates them (one home): every
    name appears, in the table's order."""
    import importlib

    module, _, name = table.partition(":")
    names = getattr(importlib.import_module(module), name)
    r = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and any(sep.join(names) in text for sep in (" | ", ", ")), (names, text[:2000])
