"""A bundle that serves more than one CPU: export's per-ISA INT8 files, `edgecnn tune`'s pick on this
device (real sessions, real MNIST), the saturation check, and predict / eval / bench honouring the pick."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import read_metadata
from edgecnn.runtime.device_record import DEVICE_JSON

ROOT = Path(__file__).resolve().parents[1]
EVAL_IMAGES = 2000  # export and tune both use the first 2000 test images: the same images


@pytest.fixture(scope="module")
def recipe_bundle(tmp_path_factory: pytest.TempPathFactory, trained_run, mnist_dir: Path) -> Path:
    """The session's trained keras-convnet exported with the default INT8 and the avx2 recipe."""
    from edgecnn.exporting import ExportConfig, export

    out = tmp_path_factory.mktemp("recipes") / "bundle"
    export(
        ExportConfig(
            model_path=Path(trained_run.model_path),
            output_dir=out,
            quantize=("int8",),
            int8_recipes=("avx2",),
            data_dir=mnist_dir,
            eval_limit=EVAL_IMAGES,
            latency=False,
        )
    )
    return out


@pytest.fixture(scope="module")
def tuned(recipe_bundle: Path, tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path):
    """A copy of the bundle tuned on this machine (few, short rounds: the pick's logic is under test)."""
    from edgecnn.benchmarking.tune import TuneConfig, tune

    bundle = tmp_path_factory.mktemp("tuned") / "bundle"
    shutil.copytree(recipe_bundle, bundle)
    result = tune(
        TuneConfig(
            bundle=bundle,
            batch_sizes=(1, 64),
            thread_counts=(1, 2),
            rounds=3,
            round_seconds=0.03,
            data_dir=mnist_dir,
        )  # fmt: skip
    )
    return bundle, result


def test_export_writes_one_int8_file_per_recipe_with_its_isas_and_accuracy(recipe_bundle: Path) -> None:
    doc = json.loads((recipe_bundle / "export.json").read_text())
    assert {"fp32", "int8", "int8-avx2"} <= set(doc["variants"])
    avx2 = doc["variants"]["int8-avx2"]
    assert avx2["settings"]["reduce_range"] and avx2["settings"]["recipe"]["name"] == "avx2"
    for variant, suits in (("int8", "avx512-vnni"), ("int8-avx2", "avx2")):
        path = recipe_bundle / Path(doc["variants"][variant]["path"]).name
        meta = read_metadata(path)
        assert meta is not None and meta.variant == variant
        assert suits in json.loads(meta.extra["int8_suits"])
        assert float(meta.extra["export_accuracy"]) == doc["variants"][variant]["accuracy"]
        assert int(meta.extra["export_eval_images"]) == EVAL_IMAGES
    # The avx2 recipe's weights use ORT's reduced range [-64, 64]: 2 * 255 * 64 < 32767, so VPMADDUBSW's
    # int16 pair sums cannot saturate; the default file uses the full int8 range.
    for name, full_range in (("model.int8-avx2.onnx", False), ("model.int8.onnx", True)):
        model = onnx.load(str(recipe_bundle / name))
        weights = [
            numpy_helper.to_array(t)
            for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2
        ]
        largest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
        assert largest > 64 if full_range else largest <= 64


def test_tune_checks_accuracy_times_and_records_the_pick(tuned) -> None:
    bundle, result = tuned
    record = json.loads((bundle / DEVICE_JSON).read_text())
    assert record["kind"] == "edgecnn.device_pick" and set(record["picks"]) == {"1", "64"}
    from edgecnn.core.ownership import foreign_entries

    assert foreign_entries(bundle) == []  # device.json is edgecnn's: `export --force` may replace the bundle
    by_file = {c.file: c for c in result.candidates if c.runtime == "ort"}
    assert {"model.onnx", "model.int8.onnx", "model.int8-avx2.onnx"} <= set(by_file)
    for c in by_file.values():
        # Same images, same kernels on this machine: the device matches export's accuracy.
        assert c.accepted, c.reason
        assert abs(c.device_accuracy - c.export_accuracy) * 100 <= 0.1
    timed = [c for c in result.candidates if c.accepted]  # every installed runtime's, too
    for c in timed:
        assert set(c.latency_ms) == {1, 64} and set(c.latency_ms[1]) == {1, 2}
    by_label = {c.label: c for c in timed}
    from edgecnn.benchmarking.tune_finalists import finalists

    assert {(d.batch, d.threads) for d in result.finalists} == {(b, t) for b in (1, 64) for t in (1, 2)}
    for d in result.finalists:
        # Each cell's finalists: the first pass's best and the ones close to it; the winner is one of
        # them, decided by paired rounds when there were two or more (tune_finalists).
        assert d.finalists == tuple(c.label for c in finalists(timed, d.batch, d.threads))
        assert d.winner in d.finalists and d.first_pass_best == d.finalists[0]
        assert (d.rounds > 0) == (len(d.finalists) > 1)
        if not d.rounds:
            assert d.winner_ms == by_label[d.winner].latency_ms[d.batch][d.threads]
    for batch, pick in result.picks.items():
        cell = min((d for d in result.finalists if d.batch == batch), key=lambda d: d.winner_ms)
        assert pick["p50_ms"] == cell.winner_ms and pick["threads"] == cell.threads
        assert by_label[cell.winner].file == pick["file"] and by_label[cell.winner].runtime == pick["runtime"]
        assert by_label[cell.winner].precision == pick["precision"]
        assert pick["p50_ms"] <= pick["fp32_p50_ms"]  # never slower than the bundle's own ORT FP32
        # Timed by bench's own code (ORT's default spinning, shared pool per thread count), so the
        # record asks for no spinning setting: predict/eval/bench run the pick exactly as it was timed.
        assert pick["session"] == {"runtime": pick["runtime"], "precision": pick["precision"],
                                   "threads": pick["threads"], "allow_spinning": None}  # fmt: skip


def _broken_copy(bundle: Path) -> Path:
    """model.int8.onnx with every weight scale shrunk 20x: wrong scales, export's accuracy claim kept."""
    model = onnx.load(str(bundle / "model.int8.onnx"))
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        w = inits.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if w is not None and w.data_type == onnx.TensorProto.INT8:
            scale = inits[node.input[1]]
            scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) / 20, scale.name))
    path = bundle / "model.int8-broken.onnx"
    onnx.save(model, str(path))
    return path


def test_saturation_check_rejects_a_candidate_that_computes_something_else(
    recipe_bundle: Path, tmp_path: Path, mnist_dir: Path
) -> None:
    from edgecnn.benchmarking.tune import TuneConfig, tune

    bundle = tmp_path / "bundle"
    shutil.copytree(recipe_bundle, bundle)
    _broken_copy(bundle)
    result = tune(
        TuneConfig(
            bundle=bundle,
            batch_sizes=(1,),
            thread_counts=(1,),
            rounds=2,
            round_seconds=0.02,
            data_dir=mnist_dir,
        )  # fmt: skip
    )
    broken = next(c for c in result.candidates if c.file == "model.int8-broken.onnx")
    assert not broken.accepted and broken.latency_ms == {}
    assert "pp" in broken.reason and f"{broken.export_accuracy:.2%}" in broken.reason
    assert result.picks[1]["file"] != "model.int8-broken.onnx"


def test_predict_eval_and_bench_run_the_pick_when_given_the_bundle(
    tuned, tmp_path: Path, mnist_dir: Path
) -> None:
    from edgecnn.benchmarking import BenchConfig, bench
    from edgecnn.evaluation import EvalConfig, evaluate
    from edgecnn.prediction import PredictConfig, predict

    bundle, result = tuned
    pred = predict(
        PredictConfig(model=bundle, inputs=(ROOT / "samples",), batch_size=1, output=tmp_path / "p.json")
    )
    assert Path(pred.model["path"]) == bundle / result.picks[1]["file"]
    assert any(DEVICE_JSON in a for a in pred.assumptions)
    assert json.loads((tmp_path / "p.json").read_text())["model"]["path"] == pred.model["path"]

    ev = evaluate(
        EvalConfig(
            model=bundle,
            data_dir=mnist_dir,
            batch_size=64,
            limit=EVAL_IMAGES,
            plot=False,
            output_dir=tmp_path / "eval",
        )  # fmt: skip
    )
    assert Path(ev.model["path"]) == bundle / result.picks[64]["file"]
    picked = next(c for c in result.candidates if c.file == result.picks[64]["file"])
    assert ev.accuracy == pytest.approx(picked.device_accuracy)

    out = bench(BenchConfig(models=(bundle,), batch_sizes=(1,), iterations=5, output_dir=tmp_path / "b"))
    assert Path(out.models[0].path) == bundle / result.picks[1]["file"]
    assert out.intra_op_threads == result.picks[1]["threads"]
    assert any(DEVICE_JSON in n for n in out.notes)
    saved = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert saved["config"]["device_picks"]
    assert saved["config"]["intra_op_threads"] == result.picks[1]["threads"]
    assert DEVICE_JSON in " ".join(saved["notes"])


def test_a_record_from_another_machine_is_refused(tuned, tmp_path: Path) -> None:
    from edgecnn.runtime.device_record import pick_for

    bundle = tmp_path / "bundle"
    shutil.copytree(tuned[0], bundle)
    record = json.loads((bundle / DEVICE_JSON).read_text())
    record["target"]["isa"] = ["avx2", "fma"]
    (bundle / DEVICE_JSON).write_text(json.dumps(record))
    with pytest.raises(EdgecnnError, match="measured on another machine.*edgecnn tune"):
        pick_for(bundle, 1)


def _record_with(bundle: Path, **pick: object) -> None:
    _record_picks(bundle, {"1": pick})


def _record_picks(bundle: Path, picks: dict[str, dict]) -> None:
    """A device.json made on this machine with these picks (batch -> fields over an FP32 ORT pick)."""
    from edgecnn.runtime.target import current_cpu_target

    base = {"variant": "fp32", "file": "model.onnx", "threads": 1, "p50_ms": 0.1, "fp32_p50_ms": 0.2}
    record = {
        "kind": "edgecnn.device_pick",
        "target": current_cpu_target(),
        "picks": {batch: {**base, **pick} for batch, pick in picks.items()},
    }
    (bundle / DEVICE_JSON).write_text(json.dumps(record))


def test_bench_runs_each_batchs_pick_as_recorded_or_refuses_picks_that_differ(
    exported_bundle, tmp_path: Path
) -> None:
    """bench's note said "ran model.onnx in OpenVINO bf16" while its table and bench.json showed ORT (and
    it took the smallest batch's pick for every batch). Every --batch runs the pick tuned nearest to it,
    as recorded; picks one run cannot time (different files or runtimes per batch) are refused."""
    from typer.testing import CliRunner

    from edgecnn.benchmarking import BenchConfig, bench
    from edgecnn.cli import app
    from edgecnn.runtime.session_config import unsupported_precision

    precision = "bf16" if unsupported_precision("bf16") is None else "fp32"
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in ("model.onnx", "model.int8.onnx"):
        shutil.copy(Path(exported_bundle.output_dir) / name, bundle / name)
    _record_picks(
        bundle,
        {
            "1": {"variant": "int8", "file": "model.int8.onnx", "runtime": "ort"},
            "64": {"runtime": "openvino", "precision": precision},
        },
    )
    out = bench(
        BenchConfig(models=(bundle,), batch_sizes=(32, 64), iterations=4, inputs="random",
                    output_dir=tmp_path / "b")
    )  # fmt: skip
    (model,) = out.models
    assert Path(model.path) == bundle / "model.onnx" and out.config.model_runtimes == (
        f"openvino:{precision}",
    )
    assert (model.runtime["runtime"], model.runtime["precision"]) == ("openvino", precision)
    saved = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert saved["models"][0]["runtime"]["runtime"] == "openvino"
    assert all(r["provider"] == "openvino:CPU" for r in saved["models"][0]["results"])
    assert f"in OpenVINO {precision}" in " ".join(saved["notes"])

    differ = r"picks differ across --batch 1,64 \(batch 1: model\.int8\.onnx in ONNX Runtime.*batch 64: "
    with pytest.raises(EdgecnnError, match=differ + r"model\.onnx in OpenVINO") as info:
        bench(BenchConfig(models=(bundle,), batch_sizes=(1, 64), iterations=4, output_dir=tmp_path / "c"))
    assert "\n" not in str(info.value) and not (tmp_path / "c").exists()
    res = CliRunner().invoke(app, ["bench", f"{bundle}@ort", "-o", str(tmp_path / "d")])
    assert res.exit_code == 1 and "is a bundle: it runs device.json's pick" in res.output


@pytest.mark.parametrize(
    ("pick", "runtime", "precision"),
    [
        ({}, "ort", None),  # a record from before runtimes: the runtime that opens the file
        ({"file": "model.int8.tflite"}, "litert", None),
        ({"runtime": "openvino", "precision": "fp32"}, "openvino", "fp32"),
        ({"file": "model.int8.tflite", "runtime": "litert", "precision": None}, "litert", None),
    ],
)
def test_device_json_runtime_fields_are_read(
    tmp_path: Path, pick: dict, runtime: str, precision: str
) -> None:
    from edgecnn.runtime.device_record import pick_for

    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "model.int8.tflite").write_bytes(b"tflite")
    _record_with(tmp_path, **pick)
    chosen = pick_for(tmp_path, 1)
    assert (chosen.runtime, chosen.precision) == (runtime, precision)


@pytest.mark.parametrize(
    ("pick", "says"),
    [
        ({"runtime": "tensorflow"}, r"picks\['1'\]\.runtime must be one of ort, openvino, litert"),
        ({"runtime": ["ort"]}, r"picks\['1'\]\.runtime must be one of"),
        ({"runtime": "openvino", "precision": "fp64"}, r"picks\['1'\]\.precision must be one of"),
        ({"runtime": "openvino", "precision": "int8"}, r"picks\['1'\]\.precision is 'int8'.*openvino"),
        ({"precision": "bf16"}, r"picks\['1'\]\.precision is 'bf16'.*runtime ort"),
        ({"runtime": "litert"}, r"picks\['1'\]\.file must name a \.tflite file"),
        ({"file": "model.int8.tflite", "runtime": "openvino"}, r"picks\['1'\]\.file must name a \.onnx"),
        ({"file": "notes.txt"}, r"picks\['1'\]\.file must name a \.onnx/\.tflite file"),
    ],
)
def test_device_json_bad_runtime_fields_name_the_file_and_key(tmp_path: Path, pick: dict, says: str) -> None:
    from edgecnn.runtime.device_record import pick_for

    (tmp_path / "model.onnx").write_bytes(b"onnx")
    _record_with(tmp_path, **pick)
    with pytest.raises(EdgecnnError, match=rf"device\.json: {says}") as info:
        pick_for(tmp_path, 1)
    assert "edgecnn tune" in str(info.value) and "\n" not in str(info.value)


def test_bundle_without_a_record_and_bad_options_are_one_line_errors(recipe_bundle: Path) -> None:
    from typer.testing import CliRunner

    from edgecnn.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(recipe_bundle), str(ROOT / "samples")])
    assert res.exit_code == 1 and "run `edgecnn tune" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["tune", str(recipe_bundle / "nope")])
    assert res.exit_code == 1 and "does not exist" in res.output  # issue 21: says what is wrong
    res = runner.invoke(app, ["tune", str(recipe_bundle), "--tolerance", "-1"])
    assert res.exit_code == 1 and "percentage points" in res.output


def test_tune_and_predict_on_a_bundle_without_tensorflow(
    recipe_bundle: Path, tmp_path: Path, mnist_dir: Path
) -> None:
    """The device side has only the base install: tune and a bundle-directory predict never touch TF."""
    from test_no_tensorflow import _assert_clean, run_without_tf

    bundle = tmp_path / "bundle"
    shutil.copytree(recipe_bundle, bundle)
    args = ["tune", str(bundle), "--batch", "1", "--threads", "1", "--rounds", "2"]
    proc, log = run_without_tf([*args, "--data-dir", str(mnist_dir), "--json"], tmp_path)
    _assert_clean(proc, log)
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "edgecnn.device_pick" and (bundle / DEVICE_JSON).exists()
    proc, log = run_without_tf(
        ["predict", str(bundle), "samples", "--json", "-o", str(tmp_path / "p.json")], tmp_path
    )
    _assert_clean(proc, log)
    assert json.loads(proc.stdout)["model"]["path"] == str(bundle / doc["picks"]["1"]["file"])


def test_a_candidate_far_below_fp32_is_rejected_even_when_export_measured_it(
    recipe_bundle: Path, tmp_path: Path, mnist_dir: Path
) -> None:
    """Export kept a file (no bound given) whose accuracy is honest but far below FP32: tune's bound
    vs FP32 keeps it from being the pick."""
    from edgecnn.benchmarking.tune import TuneConfig, tune
    from edgecnn.core.metadata import write_metadata
    from edgecnn.data import load_dataset
    from edgecnn.runtime.inference import accuracy, predict_probabilities
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.sessions import open_cpu_session

    bundle = tmp_path / "bundle"
    shutil.copytree(recipe_bundle, bundle)
    path = _broken_copy(bundle)
    meta = read_metadata(path)
    ds = load_dataset("mnist", mnist_dir, download=False)
    session, _ = open_cpu_session(path)
    x = prepare_batch(np.asarray(ds.x_test[:EVAL_IMAGES]), meta)
    honest = accuracy(predict_probabilities(session, x), np.asarray(ds.y_test[:EVAL_IMAGES]))
    model = onnx.load(str(path))
    write_metadata(model, dataclasses.replace(meta, extra={**meta.extra, "export_accuracy": repr(honest)}))
    onnx.save(model, str(path))
    result = tune(
        TuneConfig(
            bundle=bundle,
            batch_sizes=(1,),
            thread_counts=(1,),
            rounds=2,
            round_seconds=0.02,
            max_accuracy_drop=0.3,
            data_dir=mnist_dir,
        )  # fmt: skip
    )
    broken = next(c for c in result.candidates if c.file == path.name)
    assert broken.device_accuracy == pytest.approx(honest)
    assert not broken.accepted and "below FP32" in broken.reason and "0.3 pp" in broken.reason
    fp32 = result.candidates[0].device_accuracy
    for c in result.candidates:
        assert c.accepted == (c.reason == "") and (not c.accepted or (fp32 - c.device_accuracy) * 100 <= 0.3)


def test_a_bundle_runs_its_pick_in_the_picked_runtime_and_refuses_an_override(tmp_path: Path) -> None:
    """bench given a bundle ran the pick's file in ORT whatever runtime tune picked it in; eval/predict
    silently replaced an explicit --runtime/--precision with the pick's. Now the pick's runtime runs,
    and an explicit one is refused in one line."""
    pytest.importorskip("openvino")
    from test_bench import tiny_cnn

    from edgecnn.benchmarking import BenchConfig, bench
    from edgecnn.benchmarking.bench_config import with_device_picks
    from edgecnn.runtime.loaded_model import load_model
    from edgecnn.runtime.session_config import SessionConfig

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    tiny_cnn(bundle / "model.onnx")
    _record_with(bundle, runtime="openvino", precision="fp32")
    config = BenchConfig(models=(bundle, bundle / "model.onnx"), batch_sizes=(1,), iterations=3,
                         output_dir=tmp_path / "bench")  # fmt: skip
    picked = with_device_picks(config)
    assert picked.model_runtimes == ("openvino:fp32", "")
    sessions = [picked.model_session(i, picked.session) for i in (0, 1)]
    assert [(s.runtime, s.precision) for s in sessions] == [("openvino", "fp32"), ("ort", None)]
    out = bench(config)
    assert [m.runtime["runtime"] for m in out.models] == ["openvino", "ort"]
    assert out.models[0].runtime["precision"] == "fp32"
    assert load_model(bundle, SessionConfig()).session.runtime == "openvino"

    says = r"is a bundle: it runs device\.json's pick .* apply to a model file"
    for session in (SessionConfig(runtime="ort"), SessionConfig(runtime="openvino", precision="fp32")):
        with pytest.raises(EdgecnnError, match=says):
            load_model(bundle, session)
        with pytest.raises(EdgecnnError, match=says):
            with_device_picks(dataclasses.replace(config, models=(bundle,), session=session))
