"""`edgecnn bench`: timing statistics, MAC counting, inputs, outputs and the CLI's bad-input answers.

Most tests use a tiny real ONNX CNN built here with onnx.helper (no TensorFlow, fast); one test benches
the really exported keras-convnet bundle (FP32 and INT8) from the session fixture.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from edgecnn import bench as benchmod
from edgecnn.bench import BenchConfig, LatencyStats, bench, count_macs, parse_batch_sizes, timed_loop
from edgecnn.cli import app
from edgecnn.errors import EdgecnnError
from edgecnn.metadata import ModelMetadata, write_metadata

# Conv 3x3 (1->4, valid) on 28x28 -> 4x26x26, MaxPool 2 -> 4x13x13 = 676, Gemm 676->10.
TINY_MACS = 4 * 26 * 26 * 1 * 3 * 3 + 676 * 10


def tiny_cnn(path: Path, *, seed: int = 0, metadata: bool = True, **meta_fields: object) -> Path:
    """A real NHWC MNIST-shaped CNN: Transpose, Conv, Relu, MaxPool, Flatten, Gemm, Softmax."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.standard_normal((4, 1, 3, 3)) * 0.3).astype(np.float32), "conv_w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "conv_b"),
        numpy_helper.from_array((rng.standard_normal((676, 10)) * 0.05).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w", "conv_b"], ["conv"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if metadata:
        fields = {
            "input_shape": (28, 28, 1),
            "class_labels": tuple(str(i) for i in range(10)),
            "dataset": "mnist",
            "model_name": "tiny",
            **meta_fields,
        }
        write_metadata(model, ModelMetadata(**fields))  # type: ignore[arg-type]
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cnn(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def _ordered(r: dict) -> bool:
    keys = ("min_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
    values = [r[k] for k in keys]
    return all(a <= b for a, b in zip(values, values[1:], strict=False)) and r["min_ms"] > 0


# ------------------------------------------------------------------------------------ pure functions


def test_parse_batch_sizes() -> None:
    assert parse_batch_sizes("1,8,64") == (1, 8, 64)
    assert parse_batch_sizes(" 2 , 4 ") == (2, 4)
    for bad in ("", "1,,2", "a", "1.5", "1;2", "8,"):
        with pytest.raises(EdgecnnError):
            parse_batch_sizes(bad)


def test_count_macs_matches_hand_count(tiny: Path, tmp_path: Path) -> None:
    assert count_macs(tiny) == TINY_MACS
    # A static batch of 8 in the graph is still reported per image.
    model = onnx.load(str(tiny))
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_value = 8
    assert count_macs(model) == TINY_MACS


def test_latency_stats_are_ordered_and_right() -> None:
    ns = np.random.default_rng(0).integers(1_000, 5_000_000, size=1000)
    s = LatencyStats.from_ns(ns)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
    assert s.iterations == 1000
    assert s.p50_ms == pytest.approx(np.median(ns) / 1e6)
    assert s.mean_ms == pytest.approx(ns.mean() / 1e6)
    assert s.total_s == pytest.approx(ns.sum() / 1e9)


def test_timed_loop_counts_and_duration() -> None:
    calls = []
    out = timed_loop(lambda: calls.append(1), warmup=3, iterations=7, duration_s=None)
    assert len(out) == 7 and len(calls) == 10 and (out >= 0).all()
    out = timed_loop(lambda: None, warmup=0, iterations=None, duration_s=0.05)
    assert len(out) > 10  # ran until the deadline, not a fixed count


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_sizes": (0,)}, "positive"),
        ({"batch_sizes": (-4,)}, "positive"),
        ({"batch_sizes": (1, 1)}, "repeat"),
        ({"iterations": 0}, "--iterations"),
        ({"iterations": 5, "duration_s": 1.0}, "not both"),
        ({"duration_s": 0.0}, "--duration"),
        ({"warmup": -1}, "--warmup"),
        ({"device": "tpu"}, "unknown device"),
        ({"inputs": "zeros"}, "--inputs"),
        ({"cuda_graphs": True}, "--cuda-graphs"),
        ({"device": "cuda", "cuda_graphs": True, "io_binding": False}, "--io-binding"),
        ({"trt_fp16": True}, "TensorRT"),
        ({"intra_op_threads": -1}, "thread"),
    ],
)
def test_config_refuses_bad_values(tiny: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(EdgecnnError, match=message):
        BenchConfig(models=(tiny,), **kwargs)


# ------------------------------------------------------------------------------------ bench() itself


def test_bench_tiny_model_writes_everything(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    config = BenchConfig(
        models=(tiny,), batch_sizes=(1, 16), warmup=2, iterations=30, inputs="random", output_dir=out
    )
    result = bench(config)
    doc = json.loads((out / "bench.json").read_text())
    assert doc == json.loads(json.dumps(result.to_document(), default=str))
    assert doc["kind"] == "edgecnn.bench" and doc["providers_ran"] == ["CPUExecutionProvider"]
    assert doc["environment"]["hardware"]["cpu"]["model"]
    (m,) = doc["models"]
    assert m["key"] == "tiny:fp32" and m["macs_per_image"] == TINY_MACS and m["macs_source"] == "graph"
    assert m["size_bytes"] == tiny.stat().st_size
    assert m["cold_start_ms"] == pytest.approx(m["session_create_ms"] + m["first_run_ms"])
    assert [r["batch"] for r in m["results"]] == [1, 16]
    for r in m["results"]:
        assert _ordered(r), r
        assert r["iterations"] == 30 and r["provider"] == "CPUExecutionProvider" and r["call"] == "iobinding"
        assert r["throughput"] == pytest.approx(r["batch"] / (r["mean_ms"] / 1e3))
        assert r["gflops"] == pytest.approx(2 * TINY_MACS * r["throughput"] / 1e9)
        assert r["input_source"] == "random" and r["peak_rss_bytes"] > 0
    assert doc["harness_overhead"]["p50_us"] < m["results"][0]["p50_ms"] * 1e3
    rows = list(csv.DictReader(io.StringIO((out / "bench.csv").read_text())))
    assert [int(r["batch"]) for r in rows] == [1, 16] and float(rows[0]["p99_ms"]) == pytest.approx(
        m["results"][0]["p99_ms"]
    )
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # An existing result is never replaced without --force, and is refused before any timing.
    with pytest.raises(EdgecnnError, match="already exists"):
        bench(config)


def test_io_binding_and_plain_run_time_the_same_model(tiny: Path) -> None:
    for io_binding in (True, False):
        result = bench(BenchConfig(models=(tiny,), warmup=1, iterations=5, io_binding=io_binding))
        assert result.models[0].results[0].call == ("iobinding" if io_binding else "run")


def test_real_inputs_come_from_the_dataset(tiny: Path, mnist_dir: Path) -> None:
    result = bench(BenchConfig(models=(tiny,), warmup=1, iterations=5, inputs="real", data_dir=mnist_dir))
    assert result.models[0].results[0].input_source == "real:mnist"


def test_real_inputs_feed_what_preprocess_makes(tiny: Path, mnist_dir: Path) -> None:
    from edgecnn.data import load_dataset
    from edgecnn.metadata import read_metadata
    from edgecnn.runtime import open_session

    session, _ = open_session(tiny)
    meta = read_metadata(tiny)
    config = BenchConfig(models=(tiny,), inputs="real", data_dir=mnist_dir)
    feeds, source, _ = benchmod.make_feeds(
        session, meta, 3, config, benchmod._Samples(config), np.random.default_rng(0)
    )
    x = load_dataset("mnist", mnist_dir, download=False).x_test[:3].astype(np.float32) / 255.0
    assert source == "real:mnist" and np.allclose(feeds["input"], x)


def test_inputs_real_without_metadata_is_refused(tmp_path: Path) -> None:
    bare = tiny_cnn(tmp_path / "bare.onnx", metadata=False)
    with pytest.raises(EdgecnnError, match="no edgecnn metadata"):
        bench(BenchConfig(models=(bare,), iterations=2, inputs="real"))
    # auto falls back to random inputs and says so, and the MACs come from the graph.
    result = bench(BenchConfig(models=(bare,), iterations=2))
    m = result.models[0]
    assert m.results[0].input_source == "random" and any("random inputs" in n for n in m.notes)
    assert m.key == "bare" and m.macs_per_image == TINY_MACS


def test_fp16_variant_on_cpu_gets_a_note_and_metadata_macs_win(tmp_path: Path) -> None:
    model = tiny_cnn(tmp_path / "tiny.fp16.onnx", variant="fp16", macs_per_image=12345)
    m = bench(BenchConfig(models=(model,), iterations=2, inputs="random")).models[0]
    assert any("FP16 is a GPU variant" in n for n in m.notes)
    assert m.macs_per_image == 12345 and m.macs_source == "metadata"


# ------------------------------------------------------------------------------------ CLI


def test_cli_json_two_models_side_by_side(tiny: Path, tmp_path: Path) -> None:
    other = tiny_cnn(tmp_path / "other.onnx", seed=1, model_name="other")
    out = tmp_path / "cli"
    res = CliRunner().invoke(
        app,
        [
            "bench",
            str(tiny),
            str(other),
            "--batch",
            "1,4",
            "-n",
            "10",
            "--warmup",
            "1",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [m["name"] for m in doc["models"]] == ["tiny.onnx", "other.onnx"]
    for m in doc["models"]:
        for r in m["results"]:
            assert {"p50_ms", "p99_ms", "throughput", "provider"} <= set(r) and _ordered(r)
    assert json.loads((out / "bench.json").read_text())["models"][1]["key"] == "other:fp32"
    assert "harness overhead" in res.stderr and "tiny.onnx" in res.stderr  # tables went to stderr


def _one_line_error(res, *needles: str) -> None:
    assert res.exit_code != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output + res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["{missing}"], ("does not exist",)),
        (["{text}"], ("notes.onnx", "ONNX model")),
        (["{garbage}"], ("garbage.onnx", "ONNX")),
        (["{tiny}", "--batch", "0"], ("positive",)),
        (["{tiny}", "--batch", "1,x"], ("--batch",)),
        (["{tiny}", "--batch", "-1"], ("positive",)),
        (["{tiny}", "--iterations", "0"], ("--iterations",)),
        (["{tiny}", "--device", "tpu"], ("unknown device",)),
        (["{tiny}", "--duration", "1", "--iterations", "3"], ("not both",)),
        (["{tiny}", "--cuda-graphs"], ("--cuda-graphs",)),
    ],
)
def test_cli_bad_input_is_one_line(
    tiny: Path, tmp_path: Path, args: list[str], needles: tuple[str, ...]
) -> None:
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 4)
    paths = {"missing": tmp_path / "nope.onnx", "text": text, "garbage": garbage, "tiny": tiny}
    argv = ["bench", *[a.format(**paths) for a in args], "-o", str(tmp_path / "out")]
    _one_line_error(CliRunner().invoke(app, argv), *needles)
    assert not (tmp_path / "out").exists()


def test_cli_cuda_on_this_machine_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    from edgecnn.sysinfo import gpu_info

    if gpu_info():
        pytest.skip("a GPU is visible here; the fallback error cannot happen")
    res = CliRunner().invoke(app, ["bench", str(tiny), "--device", "cuda", "-o", str(tmp_path / "o")])
    _one_line_error(res, "cuda")
    assert "CUDAExecutionProvider" in res.stderr


# ------------------------------------------------------------------------------------ the real export


def test_bench_exported_bundle_fp32_and_int8(exported_bundle, mnist_dir: Path, tmp_path: Path) -> None:
    fp32 = Path(exported_bundle.model_path)
    int8 = Path(exported_bundle.variants["int8"].path)
    out = tmp_path / "bundle-bench"
    res = CliRunner().invoke(
        app,
        [
            "bench", str(fp32), str(int8), "--batch", "1,64", "-n", "20", "--warmup", "3",
            "--data-dir", str(mnist_dir), "-o", str(out), "--json",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    variants = [m["variant"] for m in doc["models"]]
    assert variants == ["fp32", "int8"]
    for m in doc["models"]:
        assert m["macs_per_image"] and m["macs_per_image"] > 1_000_000  # keras-convnet: ~2.8 M MACs
        assert [r["batch"] for r in m["results"]] == [1, 64]
        for r in m["results"]:
            assert _ordered(r), r
            assert r["input_source"] == "real:mnist" and r["provider"] == "CPUExecutionProvider"
            assert r["throughput"] > 0 and r["gflops"] > 0
    # The MAC count from the graph agrees with the one export wrote into the metadata.
    assert count_macs(fp32) == doc["models"][0]["macs_per_image"]


def test_cuda_graph_orchestration(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What bench asks of the runtime on a CUDA-graph run: one graph id per batch size (ORT replays a
    graph on the buffers it captured), and a cold-start run that does not capture. Played on CPU with
    the provider relabelled, since no GPU is here; the real CPU session still runs every call."""
    from edgecnn import runtime

    real_open, real_bind = runtime.open_session, runtime.bind_io
    seen: dict[str, list] = {"graph_ids": [], "plain": []}

    def fake_open(path, config, notes=None):
        assert config.device == "cuda" and config.cuda_graphs
        session, _ = real_open(path, runtime.SessionConfig())
        real_run = session.run

        def run(names, feeds, options=None):
            seen["plain"].append(None if options is None else options.get_run_config_entry("gpu_graph_id"))
            return real_run(names, feeds, options)

        session.run = run
        return session, "CUDAExecutionProvider"

    def fake_bind(session, provider, feeds, device_id=0, graph_id=None):
        assert provider == "CUDAExecutionProvider"
        seen["graph_ids"].append(graph_id)
        return real_bind(session, "CPUExecutionProvider", feeds, device_id, graph_id)

    monkeypatch.setattr(runtime, "open_session", fake_open)
    monkeypatch.setattr(runtime, "bind_io", fake_bind)
    result = bench(
        BenchConfig(models=(tiny,), batch_sizes=(1, 4, 16), iterations=3, device="cuda", cuda_graphs=True)
    )
    assert seen["graph_ids"] == [1, 2, 3]
    assert seen["plain"] == ["-1"]
    assert [r.provider for r in result.models[0].results] == ["CPUExecutionProvider"] * 3  # what really ran
