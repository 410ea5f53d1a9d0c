"""`edgecnn bench`: timing statistics, MAC counting, inputs, outputs and the CLI's bad-input answers.

Most tests use a tiny real ONNX CNN built here with onnx.helper (no TensorFlow, fast); one test benches
the really exported keras-convnet bundle (FP32 and INT8) from the session fixture.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from edgecnn.benchmarking import BenchConfig, bench, parse_batch_sizes, shares_thread_pool, speedup, timing
from edgecnn.benchmarking.notes import int8_vs_fp32_notes
from edgecnn.benchmarking.timing import LatencyStats, timed_loop
from edgecnn.cli import app
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata, write_metadata
from edgecnn.runtime.graph_stats import count_macs
from edgecnn.runtime.session_config import SessionConfig


def _bench_config(models: tuple, **kwargs: object) -> BenchConfig:
    """A BenchConfig from flat keywords: the session's own (device, cuda_graphs...) go to SessionConfig."""
    names = {f.name for f in dataclasses.fields(SessionConfig)}
    session = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    return BenchConfig(models=models, session=SessionConfig(**session), **kwargs)  # type: ignore[arg-type]


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
        ({"precision": "fp16"}, "TensorRT"),
        ({"thread_counts": (-1,)}, "thread"),
    ],
)
def test_config_refuses_bad_values(tiny: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(EdgecnnError, match=message):
        _bench_config((tiny,), **kwargs)


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
    from edgecnn.core.metadata import read_metadata
    from edgecnn.data import load_dataset
    from edgecnn.runtime.feeds import DatasetSamples, make_feeds
    from edgecnn.runtime.sessions import open_session

    session, _ = open_session(tiny)
    meta = read_metadata(tiny)
    config = BenchConfig(models=(tiny,), inputs="real", data_dir=mnist_dir)
    feeds, source, _ = make_feeds(
        session, meta, 3, config.inputs, DatasetSamples(config.data_dir), np.random.default_rng(0)
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
    from edgecnn.core.environment import gpu_info

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
    # Timed side by side, with INT8 reported against FP32 (the first model given).
    assert doc["interleaved"] is True and doc["baseline"] == Path(fp32).name
    for base, q in zip(doc["models"][0]["results"], doc["models"][1]["results"], strict=True):
        assert q["speedup_vs_baseline"] == pytest.approx(base["p50_ms"] / q["p50_ms"])
        assert q["round_speedup_vs_baseline"] > 0
        if q["speedup_vs_baseline"] < 1:
            assert any(f"batch {q['batch']}: INT8" in n for n in doc["notes"])


def test_cuda_graph_orchestration(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What bench asks of the runtime on a CUDA-graph run: one graph id per batch size (ORT replays a
    graph on the buffers it captured), and a cold-start run that does not capture. Played on CPU with
    the provider relabelled, since no GPU is here; the real CPU session still runs every call (so its
    placement, all CPU, is only recorded here: the placement check is tested in test_gpu_truth.py)."""
    from edgecnn.runtime import checked_session, io_binding, sessions
    from edgecnn.runtime.session_config import SessionConfig

    real_open, real_bind = sessions.open_session, io_binding.bind_io
    checked: list[str] = []
    seen: dict[str, list] = {"graph_ids": [], "plain": []}

    def fake_open(path, config, notes=None):
        assert config.device == "cuda" and config.cuda_graphs and config.enable_profiling
        session, _ = real_open(
            path, SessionConfig(enable_profiling=True, profile_prefix=config.profile_prefix)
        )
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

    monkeypatch.setattr(checked_session, "open_session", fake_open)
    monkeypatch.setattr(
        checked_session, "check_placement", lambda placement, device, **_: checked.append(device)
    )
    monkeypatch.setattr(io_binding, "bind_io", fake_bind)
    result = bench(
        _bench_config((tiny,), batch_sizes=(1, 4, 16), iterations=3, device="cuda", cuda_graphs=True)
    )
    assert seen["graph_ids"] == [1, 2, 3]
    # The first run, then per batch one plain run: the reference the CUDA-graph replay is compared with.
    assert seen["plain"] == ["-1"] * 4
    assert sum("CUDA-graph replay matches a normal run" in n for n in result.models[0].notes) == 3
    assert checked == ["cuda"]
    placement = result.models[0].results[0].placement
    assert placement["by_provider"] == {"CPUExecutionProvider": placement["nodes_total"]}
    assert [r.provider for r in result.models[0].results] == ["CPUExecutionProvider"] * 3  # what really ran


# ------------------------------------------------------------------------------------ interleaving


def test_interleaved_rounds_rotate_the_order() -> None:
    log: list[str] = []
    runners = {name: (lambda n=name: log.append(n)) for name in ("a", "b", "c")}
    by_round = timing.interleaved_rounds_by_round(
        runners, rounds=4, iterations_per_round=2, warmup=1, block_warmup=0
    )
    rounds = ["aabbcc", "bbccaa", "ccaabb", "aabbcc"]
    assert "".join(log) == "abc" + "".join(rounds)  # warmup once each, then the rotated blocks
    log.clear()
    # By default each block starts with one untimed call: 3 calls per block, 2 of them timed.
    default = timing.interleaved_rounds_by_round(runners, rounds=2, iterations_per_round=2)
    assert "".join(log) == "aaabbbccc" + "bbbcccaaa"
    assert [len(b) for b in default["a"]] == [2, 2]
    assert set(by_round) == {"a", "b", "c"}
    for blocks in by_round.values():
        assert [len(b) for b in blocks] == [2, 2, 2, 2] and all(x >= 0 for b in blocks for x in b)
    flat = timing.interleaved_rounds({"x": lambda: None, "y": lambda: None}, rounds=3, iterations_per_round=5)
    assert {k: len(v) for k, v in flat.items()} == {"x": 15, "y": 15}
    timed = timing.interleaved_rounds_by_round(
        {"x": lambda: None, "y": lambda: None}, rounds=3, duration_per_round_s=0.005
    )
    assert all(len(blocks) == 3 and all(len(b) > 1 for b in blocks) for blocks in timed.values())
    with pytest.raises(EdgecnnError):
        timing.interleaved_rounds({"x": lambda: None}, rounds=0, iterations_per_round=1)
    with pytest.raises(EdgecnnError):
        timing.interleaved_rounds({"x": lambda: None}, rounds=2)  # neither iterations nor duration


def test_interleaved_rounds_measure_what_the_runner_costs() -> None:
    import time

    def slow() -> None:
        time.sleep(0.002)

    ms = timing.interleaved_rounds({"slow": slow, "fast": lambda: None}, rounds=2, iterations_per_round=3)
    assert min(ms["slow"]) >= 2.0 and max(ms["fast"]) < 1.0


def test_speedup_vs_baseline_from_known_latencies() -> None:
    # The third baseline round was disturbed (10x slower): the mean is fooled, p50 and the round median
    # are not. The model is twice as slow as the baseline.
    base = [[1.0, 1.0], [1.0, 1.0], [10.0, 10.0]]
    model = [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
    s = speedup.speedup_vs_baseline(base, model)
    assert s.p50 == pytest.approx(0.5) and s.round_median == pytest.approx(0.5) and s.rounds == 3
    assert s.mean == pytest.approx(4.0 / 2.0)
    # Slow drift: the machine gets 3x slower over the run; every round still says "2x faster".
    drift = speedup.speedup_vs_baseline(
        [[2.0, 2.2], [4.0, 4.4], [6.0, 6.6]], [[1.0, 1.1], [2.0, 2.2], [3.0, 3.3]]
    )
    assert drift.round_median == pytest.approx(2.0)
    unpaired = speedup.speedup_vs_baseline([[1.0, 3.0]], [[2.0, 2.0]], paired=False)
    assert unpaired.round_median is None and unpaired.rounds == 0 and unpaired.p50 == pytest.approx(1.0)
    with pytest.raises(EdgecnnError, match="differ"):
        speedup.speedup_vs_baseline([[1.0], [1.0]], [[1.0]])


def test_block_sizes_spread_iterations_over_rounds() -> None:
    assert timing.block_sizes(23, 10) == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert sum(timing.block_sizes(100, 7)) == 100
    assert timing.rotated_order(3, 4) == [1, 2, 0]


def _record_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap runtime's bind_io so each timed call logs which model's binding ran (0 = first bound)."""
    from edgecnn.runtime import io_binding

    real_bind = io_binding.bind_io
    # The sessions themselves, not their ids: a closed model's id can be reused by the next session.
    sessions: list[object] = []
    log: list[int] = []

    def bind(session, provider, feeds, device_id=0, graph_id=None):
        bound = real_bind(session, provider, feeds, device_id, graph_id)
        if not any(s is session for s in sessions):
            sessions.append(session)
        index = next(i for i, s in enumerate(sessions) if s is session)
        real_run = bound.run

        def run() -> None:
            log.append(index)
            real_run()

        bound.run = run  # type: ignore[method-assign]
        return bound

    monkeypatch.setattr(io_binding, "bind_io", bind)
    return log


def test_bench_interleaves_models_and_reports_ratios(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tiny_cnn(tmp_path / "other.onnx", seed=1, model_name="other")
    log = _record_calls(monkeypatch)
    out = tmp_path / "il"
    result = bench(
        BenchConfig(models=(tiny, other), warmup=1, iterations=7, rounds=3, inputs="random", output_dir=out)
    )
    # Warmup each, then blocks of 3, 2, 2 timed runs (7 over 3 rounds) after one untimed call each,
    # with the first model going first, then second, then first again.
    assert log == [0, 1] + [0] * 4 + [1] * 4 + [1] * 3 + [0] * 3 + [0] * 3 + [1] * 3
    doc = json.loads((out / "bench.json").read_text())
    assert doc["interleaved"] is True and doc["baseline"] == "tiny.onnx" and doc["config"]["rounds"] == 3
    assert doc["block_warmup"] == 1
    base, model = (m["results"][0] for m in doc["models"])
    for r in (base, model):
        assert r["iterations"] == 7 and r["rounds"] == 3 and len(r["round_p50_ms"]) == 3 and _ordered(r)
        assert {"p50_ms", "p99_ms", "throughput", "provider"} <= set(r)
    assert base["speedup_vs_baseline"] == 1.0 and base["round_speedup_vs_baseline"] == 1.0
    assert model["speedup_vs_baseline"] == pytest.approx(base["p50_ms"] / model["p50_ms"])
    assert model["mean_speedup_vs_baseline"] == pytest.approx(base["mean_ms"] / model["mean_ms"])
    per_round = [b / m for b, m in zip(base["round_p50_ms"], model["round_p50_ms"], strict=True)]
    assert model["round_speedup_vs_baseline"] == pytest.approx(float(np.median(per_round)))
    rows = list(csv.DictReader(io.StringIO((out / "bench.csv").read_text())))
    assert float(rows[1]["speedup_vs_baseline"]) == pytest.approx(model["speedup_vs_baseline"])
    assert rows[1]["round_speedup_vs_baseline"] and rows[1]["rounds"] == "3"
    # The same numbers the run reports come out of the public stats function on its per-round medians.
    s = speedup.speedup_vs_baseline([[x] for x in base["round_p50_ms"]], [[x] for x in model["round_p50_ms"]])
    assert s.round_median == pytest.approx(model["round_speedup_vs_baseline"])
    assert result.models[1].results[0].latency.p50_ms == pytest.approx(model["p50_ms"])


def test_no_interleave_times_one_model_after_the_other(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tiny_cnn(tmp_path / "other.onnx", seed=1, model_name="other")
    log = _record_calls(monkeypatch)
    result = bench(
        BenchConfig(models=(tiny, other), warmup=1, iterations=4, inputs="random", interleave=False)
    )
    assert log == [0] * 5 + [1] * 5
    doc = result.to_document()
    assert doc["interleaved"] is False and any("one after the other" in n for n in doc["notes"])
    base, model = (m["results"][0] for m in doc["models"])
    assert model["rounds"] == 1 and model["round_p50_ms"] == [] and model["round_speedup_vs_baseline"] is None
    assert model["speedup_vs_baseline"] == pytest.approx(base["p50_ms"] / model["p50_ms"])


def test_interleaved_duration_and_single_model(tiny: Path) -> None:
    result = bench(BenchConfig(models=(tiny,), warmup=0, duration_s=0.05, rounds=5, inputs="random"))
    (r,) = result.models[0].results
    assert r.rounds == 5 and len(r.round_p50_ms) == 5 and r.latency.iterations > 5
    assert r.speedup_vs_baseline == 1.0 and r.peak_rss_bytes  # peak over the rounds when no warmup


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rounds": 0}, "--rounds"),
        ({"rounds": 20, "iterations": 10}, "exceeds"),
        ({"rounds": 2, "interleave": False}, "--no-interleave"),
    ],
)
def test_config_refuses_bad_rounds(tiny: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(EdgecnnError, match=message):
        _bench_config((tiny,), **kwargs)
    assert BenchConfig(models=(tiny,), iterations=4).rounds == 4  # default: min(10, iterations)
    assert BenchConfig(models=(tiny,), interleave=False).rounds is None


def test_int8_slower_than_fp32_is_flagged() -> None:
    def model(name: str, variant: str, p50s: list[float], rounds: list[list[float]]) -> dict:
        return {
            "name": name,
            "variant": variant,
            "results": [
                {"batch": b, "p50_ms": p, "round_p50_ms": r}
                for b, p, r in zip((1, 64), p50s, rounds, strict=True)
            ],
        }

    fp32 = model("model.onnx", "fp32", [0.05, 1.0], [[0.05, 0.05], [1.0, 1.0]])
    int8 = model("model.int8.onnx", "int8", [0.04, 3.0], [[0.04, 0.04], [2.0, 4.0]])
    notes = int8_vs_fp32_notes([fp32, int8])
    assert len(notes) == 1 and notes[0].startswith("batch 64: INT8 model.int8.onnx is slower than FP32")
    assert "3.00x" in notes[0] and "3.00x as the median of per-round ratios" in notes[0]
    assert int8_vs_fp32_notes([fp32, model("m.fp16.onnx", "fp16", [9, 9], [[], []])]) == []


def test_time_session_uses_the_bench_path(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgecnn.runtime.sessions import open_session

    session, provider = open_session(tiny)
    feeds = {"input": np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)}
    log = _record_calls(monkeypatch)
    stats = timing.time_session(session, provider, feeds, iterations=6, warmup=2)
    assert isinstance(stats, LatencyStats) and stats.iterations == 6 and len(log) == 8
    assert stats.min_ms > 0 and stats.p50_ms <= stats.max_ms
    # An ONNX runner interleaves with any other callable (a TFLite interpreter, a Keras function...).
    ms = timing.interleaved_rounds(
        {"onnx": timing.session_runner(session, provider, feeds), "other": lambda: None},
        rounds=2,
        iterations_per_round=3,
    )
    assert len(ms["onnx"]) == 6 and len(log) == 8 + 6 + 2  # + one untimed call per block
    plain = timing.time_session(session, provider, feeds, iterations=None, duration_s=0.02, io_binding=False)
    assert plain.iterations > 1 and len(log) == 16  # session.run path: no binding involved
    with pytest.raises(EdgecnnError, match="not both"):
        timing.time_session(session, provider, feeds, iterations=3, duration_s=1.0)


def test_cli_no_interleave_and_rounds(tiny: Path, tmp_path: Path) -> None:
    other = tiny_cnn(tmp_path / "other.onnx", seed=1, model_name="other")
    argv = ["bench", str(tiny), str(other), "-n", "6", "--warmup", "1", "--json"]
    res = CliRunner().invoke(app, [*argv, "--no-interleave", "-o", str(tmp_path / "seq")])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["interleaved"] is False and "one after the other" in res.stderr
    res = CliRunner().invoke(app, [*argv, "--rounds", "3", "-o", str(tmp_path / "il")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["interleaved"] is True and doc["models"][1]["results"][0]["rounds"] == 3
    assert "x base" in res.stderr and "3 rotating rounds" in res.stderr
    _one_line_error(CliRunner().invoke(app, [*argv, "--rounds", "9", "-o", str(tmp_path / "x")]), "--rounds")
    _one_line_error(
        CliRunner().invoke(app, [*argv, "--rounds", "2", "--no-interleave", "-o", str(tmp_path / "y")]),
        "--no-interleave",
    )


def test_interleaved_cpu_sessions_share_one_thread_pool(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    """Per-session pools let an idle session's spinning workers steal a core from the timed one."""
    from edgecnn.runtime import sessions, thread_pool
    from edgecnn.runtime.session_config import SessionConfig

    monkeypatch.setattr(thread_pool.POOL, "may_share", True)
    monkeypatch.setattr(thread_pool.POOL, "sizes", None)
    other = tiny_cnn(tmp_path / "other.onnx", seed=1)
    two = (tiny, other)
    assert shares_thread_pool(BenchConfig(models=two, iterations=4), 0)
    config = BenchConfig(models=two, iterations=4)
    assert config.session_config(0, shares_thread_pool(config, 0)).shared_thread_pool
    assert not shares_thread_pool(BenchConfig(models=(tiny,), iterations=4), 0)
    assert not shares_thread_pool(BenchConfig(models=two, iterations=4, interleave=False), 0)
    # Spinning is a per-session option: asking for it keeps per-session pools instead of ignoring it.
    assert not shares_thread_pool(_bench_config(two, iterations=4, allow_spinning=False), 0)
    # A pool of other sizes cannot be resized.
    monkeypatch.setattr(thread_pool.POOL, "sizes", (3, 1))
    assert not shares_thread_pool(BenchConfig(models=two, iterations=4), 0)
    with pytest.raises(EdgecnnError, match="cannot be resized"):
        sessions.session_options(SessionConfig(threads=2))
    # A library caller's process (like this test's) keeps per-session pools, and the result says so.
    monkeypatch.setattr(thread_pool.POOL, "may_share", False)
    monkeypatch.setattr(thread_pool.POOL, "sizes", None)
    doc = bench(BenchConfig(models=two, iterations=4, rounds=2, warmup=1, batch_sizes=(1,))).to_document()
    assert doc["thread_pool"] == "per-session"
    assert any("own ONNX Runtime thread pool" in n for n in doc["notes"])


def test_cli_process_benches_side_by_side_on_one_shared_pool(tiny: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    other = tiny_cnn(tmp_path / "other.onnx", seed=1)
    code = "import sys; from edgecnn.cli import main; sys.argv[0] = 'edgecnn'; main()"
    args = [
        str(tiny),
        str(other),
        "-n",
        "6",
        "--warmup",
        "1",
        "--rounds",
        "2",
        "--json",
        "-o",
        str(tmp_path / "b"),
    ]
    proc = subprocess.run([sys.executable, "-c", code, "bench", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["thread_pool"] == "shared" and doc["interleaved"]
    assert not any("own ONNX Runtime thread pool" in n for n in doc["notes"])


def test_shared_pool_session_options_and_validation() -> None:
    from edgecnn.runtime.session_config import SessionConfig
    from edgecnn.runtime.sessions import session_options

    so = session_options(SessionConfig(shared_thread_pool=True, threads=2))
    assert so.use_per_session_threads is False
    assert session_options(SessionConfig()).use_per_session_threads is True
    with pytest.raises(EdgecnnError, match="spinning"):
        SessionConfig(shared_thread_pool=True, allow_spinning=True)
