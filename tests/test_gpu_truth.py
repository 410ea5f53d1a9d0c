"""CUDA and TensorRT that tell the truth, tested with the real onnxruntime-gpu wheel.

This machine has the GPU wheel but no CUDA libraries: the CUDA and TensorRT providers are registered
and fail to start, which is exactly the path that used to fall back silently. Everything here runs
real ONNX Runtime sessions; nothing is faked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_bench import _bench_config, tiny_cnn
from typer.testing import CliRunner

from edgecnn.benchmarking import bench
from edgecnn.benchmarking.notes import int8_vs_fp32_notes
from edgecnn.benchmarking.trt_engine import EngineCacheSnapshot, engine_cold_start
from edgecnn.cli import app
from edgecnn.core.environment import gpu_info
from edgecnn.core.errors import EdgecnnError
from edgecnn.exporting.quantization.tensorrt import TRT_EXTRA_OPTIONS, TRT_OP_TYPES
from edgecnn.runtime import SessionConfig, open_session
from edgecnn.runtime.checked_session import open_checked
from edgecnn.runtime.ort_log import captured_ort_log, clean_ort_message, parse_log
from edgecnn.runtime.placement import zero_feeds
from edgecnn.runtime.providers import provider_list, trt_profile_shapes
from edgecnn.runtime.sessions import ProviderFailed, run_first

no_gpu = pytest.mark.skipif(bool(gpu_info()), reason="a GPU is visible here: the providers would start")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cnn(tmp_path_factory.mktemp("truth") / "tiny.onnx")


@pytest.fixture(scope="module")
def tiny_qdq(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN with static QDQ quantization (what TensorRT's INT8 mode reads its scales from)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.random((1, 28, 28, 1), dtype=np.float32)} for _ in range(4)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    out = tmp_path_factory.mktemp("truth-qdq") / "tiny.qdq.onnx"
    # TensorRT's Q/DQ form (runtime.trt_qdq), so bench --precision int8 lets it through to the provider.
    quantize_static(str(tiny), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=list(TRT_OP_TYPES),
                    extra_options=dict(TRT_EXTRA_OPTIONS))  # fmt: skip
    return out


# ------------------------------------------------------------------------ no silent fallback


@no_gpu
@pytest.mark.parametrize(
    "device, provider", [("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")]
)
def test_gpu_request_fails_with_the_reason_ort_gave(
    tiny: Path, device: str, provider: str, capfd: pytest.CaptureFixture[str]
) -> None:

    with pytest.raises(ProviderFailed) as info:
        open_session(tiny, SessionConfig(device=device))
    message = str(info.value)
    assert message.startswith(f"device {device!r}: {provider} failed to initialise: ")
    # The reason comes from ORT's C++ log (the library that did not load), not cut off, plus the fix.
    assert "cannot be loaded: lib" in message and "No such file or directory" in message
    assert "edgecnn doctor" in message and "\n" not in message
    out, err = capfd.readouterr()
    assert out == "" and "Falling back" not in err and "[E:onnxruntime" not in err


@no_gpu
def test_tensorrt_creation_failure_raises_instead_of_retrying(tiny: Path) -> None:
    """With ORT's fallback on, a TensorRT creation failure is retried on CUDA, then CPU, and only the
    retry's outcome is visible. With enable_fallback=0 the TensorRT registration error itself reaches
    the user: its "Please install TensorRT" text proves the retry never happened."""
    with pytest.raises(ProviderFailed, match="Please install TensorRT libraries") as info:
        open_session(tiny, SessionConfig(device="tensorrt"))
    assert info.value.provider == "TensorrtExecutionProvider"
    assert "CUDAExecutionProvider" not in str(info.value)


@no_gpu
def test_auto_lands_on_cpu_and_says_why_each_gpu_was_skipped(tiny: Path) -> None:
    notes: list[str] = []
    _, provider = open_session(tiny, SessionConfig(device="auto"), notes)
    assert provider == "CPUExecutionProvider"
    assert "picked CPUExecutionProvider" in notes[0]
    assert "tensorrt: libonnxruntime_providers_tensorrt" in notes[0]
    assert "cuda: libonnxruntime_providers_cuda" in notes[0]


@no_gpu
def test_auto_with_cuda_graphs_never_lands_on_cpu(tiny: Path) -> None:
    with pytest.raises(EdgecnnError, match="no provider among tensorrt, cuda"):
        open_session(tiny, SessionConfig(device="auto", cuda_graphs=True))


@no_gpu
def test_ort_log_is_routed_not_muted() -> None:
    import onnxruntime as ort

    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    with captured_ort_log() as log:
        ort.InferenceSession(
            model.SerializeToString(), providers=["CUDAExecutionProvider"], enable_fallback=0
        )
    reason = log.reason() or ""
    assert "libonnxruntime_providers_cuda.so cannot be loaded" in reason
    assert "\x1b" not in reason and "provider_bridge_ort.cc" not in reason


def test_parse_log_keeps_other_stderr_text_and_cleans_ort_messages() -> None:
    text = (
        "\x1b[1;31m2026-01-01 00:00:00.1 [E:onnxruntime:Default, x.cc:1 f()] /src/a/b.cc:12 void f(int) "
        "[ONNXRuntimeError] : 1 : FAIL : Failed to load library /x/libonnxruntime_providers_cuda.so with "
        "error: libcudnn.so.9: cannot open shared object file\x1b[m\nsomething else printed\n"
    )
    log, other = parse_log(text)
    assert other == "something else printed"
    assert (
        log.reason()
        == "libonnxruntime_providers_cuda.so cannot be loaded: libcudnn.so.9: cannot open shared object file"
    )
    run_failure = (
        "[ONNXRuntimeError] : 11 : EP_FAIL : Non-zero status code returned while running TRTKernel_graph_x "
        "node. Name:'TensorrtExecutionProvider_TRTKernel_graph_x_0' Status Message: TensorRT EP failed to "
        "create engine from network."
    )
    assert clean_ort_message(run_failure) == "TensorRT EP failed to create engine from network."


def test_first_run_failure_is_one_line_naming_the_provider(tiny: Path) -> None:
    """A real session whose first run fails; reported as the GPU provider it would have been on a GPU
    (the one fake here: a session that 'initialised' CUDA)."""
    session, _ = open_session(tiny)

    class CudaLabelled:
        def get_providers(self) -> list[str]:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    bad = {"input": np.zeros((1, 3, 3, 1), np.float32)}  # wrong shape: ORT raises
    with pytest.raises(ProviderFailed, match="CUDAExecutionProvider failed at its first run: .*dimensions"):
        run_first(CudaLabelled(), "cuda", lambda: session.run(None, bad))
    with pytest.raises(EdgecnnError, match="ONNX Runtime failed to run the model") as info:
        run_first(session, "cpu", lambda: session.run(None, bad))
    assert not isinstance(info.value, ProviderFailed)


@no_gpu
@pytest.mark.parametrize("command", ["bench", "predict", "eval"])
def test_cli_cuda_is_one_line_and_nothing_on_stdout(tiny: Path, tmp_path: Path, command: str) -> None:
    extra = {"bench": [], "predict": [str(Path(__file__).parents[1] / "samples")], "eval": ["--limit", "10"]}
    out = tmp_path / ("o.json" if command == "predict" else "o")  # predict writes one .json file
    argv = [command, str(tiny), *extra[command], "--device", "cuda", "--json", "-o", str(out)]
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 1
    assert res.stdout == ""  # --json output stays one JSON document (here: none), no "Falling back"
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: device 'cuda': CUDAExecutionProvider failed to initialise: ")
    assert "cannot be loaded" in lines[0] and "edgecnn doctor" in lines[0]
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------ placement


def test_bench_json_has_placement_per_model_and_batch(tiny: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["bench", str(tiny), "--batch", "1,4", "-n", "5", "--json", "-o", str(tmp_path / "b")]
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    graph_nodes = len(onnx.load(str(tiny)).graph.node)
    for model in doc["models"]:
        for result in model["results"]:
            placement = result["placement"]
            total = placement["nodes_total"]
            # ORT fuses some nodes (Conv+Relu), so it runs at most as many nodes as the file holds.
            assert 0 < total <= graph_nodes
            assert placement["by_provider"] == {"CPUExecutionProvider": total}
            assert placement["summary"] == f"{total} of {total} nodes on CPUExecutionProvider"
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["models"][0]["placement"]["nodes_total"]
    assert "placement (tiny.onnx):" in res.stderr


def test_predict_and_eval_report_placement(tiny: Path, tmp_path: Path) -> None:
    samples = str(Path(__file__).parents[1] / "samples")
    res = CliRunner().invoke(app, ["predict", str(tiny), samples, "--json", "-o", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["placement"]["by_provider"] == {"CPUExecutionProvider": doc["placement"]["nodes_total"]}
    assert f"placement: {doc['placement']['summary']}" in res.stderr
    res = CliRunner().invoke(app, ["eval", str(tiny), "--limit", "20", "--json", "-o", str(tmp_path / "e")])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["placement"]["summary"].endswith("nodes on CPUExecutionProvider")


def test_checked_session_placement_is_the_real_one(tiny: Path) -> None:
    checked = open_checked(tiny, SessionConfig(), lambda s: zero_feeds(s, 2))
    assert checked.device == "cpu" and checked.first_outputs[0].shape == (2, 10)
    ops = set(checked.placement.by_provider_ops["CPUExecutionProvider"])
    assert "Conv" in ops or "FusedConv" in ops
    # Profiling ended with the first run: later runs of the session are not profiled.
    assert checked.session.end_profiling() == ""


# ------------------------------------------------------------------------ TensorRT rules


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "tensorrt", "cuda_graphs": True, "batch_sizes": (1, 8)}, "one batch size per run"),
        ({"device": "auto", "cuda_graphs": True, "batch_sizes": (1, 8)}, "one batch size per run"),
        ({"device": "cuda", "cuda_graphs": True, "warmup": 1}, "--warmup >= 2"),
    ],
)
def test_cuda_graph_rules(tiny: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(EdgecnnError, match=message):
        _bench_config((tiny,), **kwargs)
    # The CUDA EP keeps one graph per id: several batch sizes are fine there, and TensorRT takes one.
    _bench_config((tiny,), device="cuda", cuda_graphs=True, batch_sizes=(1, 8))
    _bench_config((tiny,), device="tensorrt", cuda_graphs=True, batch_sizes=(8,))


def test_trt_int8_refused_without_qdq(tiny: Path, tiny_qdq: Path) -> None:
    with pytest.raises(EdgecnnError, match="not a TensorRT INT8 graph: no QuantizeLinear/DequantizeLinear"):
        bench(_bench_config((tiny,), device="tensorrt", precision="int8", iterations=2))
    if gpu_info():
        return
    # A QDQ model passes that check and meets the real provider, which cannot start here.
    with pytest.raises(ProviderFailed, match="TensorrtExecutionProvider"):
        bench(_bench_config((tiny_qdq,), device="tensorrt", precision="int8", iterations=2))


def test_trt_profile_shapes_come_from_the_batch_sizes(tiny: Path) -> None:
    config = SessionConfig(device="tensorrt", trt_profile_batches=(8, 1, 64))
    shapes = trt_profile_shapes(tiny, config)
    assert shapes == {
        "trt_profile_min_shapes": "input:1x28x28x1",
        "trt_profile_opt_shapes": "input:1x28x28x1",  # no timed batch named: the smallest
        "trt_profile_max_shapes": "input:64x28x28x1",
    }
    name, options = provider_list(config, "tensorrt", shapes)[0]
    assert name == "TensorrtExecutionProvider" and options["trt_profile_max_shapes"] == "input:64x28x28x1"
    assert _bench_config((tiny,), device="tensorrt", batch_sizes=(1, 8)).session_config(
        0
    ).trt_profile_batches == (1, 8)
    assert trt_profile_shapes(tiny, SessionConfig(device="tensorrt")) is None


def test_engine_cold_start_built_then_loaded_from_cache(tmp_path: Path) -> None:
    cache = tmp_path / "engines"
    cache.mkdir()
    before = EngineCacheSnapshot.take(cache)
    (cache / "TensorrtExecutionProvider_TRTKernel_graph_x_0_sm90.engine").write_bytes(b"engine")
    built = engine_cold_start("TensorrtExecutionProvider", before, 4_000_000_000, 1_000_000_000)
    assert built is not None and built["engine"] == "built" and built["engine_build_ms"] == 5000.0
    again = engine_cold_start("TensorrtExecutionProvider", EngineCacheSnapshot.take(cache), 50_000_000, 0)
    assert again is not None and again["engine"] == "loaded from cache" and again["engine_build_ms"] is None
    assert engine_cold_start("CUDAExecutionProvider", before, 1, 1) is None


def test_int8_note_says_this_cpu_only_for_cpu_runs() -> None:
    def model(variant: str, p50: float, provider: str) -> dict:
        result = {"batch": 1, "p50_ms": p50, "round_p50_ms": [], "provider": provider}
        return {"name": variant, "variant": variant, "results": [result]}

    (cpu,) = int8_vs_fp32_notes(
        [model("fp32", 1.0, "CPUExecutionProvider"), model("int8", 2.0, "CPUExecutionProvider")]
    )
    assert "on this CPU" in cpu
    (gpu,) = int8_vs_fp32_notes(
        [model("fp32", 1.0, "CUDAExecutionProvider"), model("int8", 2.0, "CUDAExecutionProvider")]
    )
    assert "on this CPU" not in gpu and "on CUDAExecutionProvider" in gpu


def test_op_profile_on_a_gpu_says_it_measures_launches() -> None:
    from edgecnn.benchmarking.notes import gpu_notes

    (note,) = gpu_notes(True, "CUDAExecutionProvider")
    assert "--op-profile on CUDAExecutionProvider" in note and "launch" in note
    assert gpu_notes(True, "CPUExecutionProvider") == [] and gpu_notes(False, "CUDAExecutionProvider") == []
