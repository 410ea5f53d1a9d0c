"""The NVIDIA edge by the book (issue 20), tested on this CPU-only machine: TensorRT's Q/DQ rules on real
quantized files, the refusal of the CPU INT8 file for TensorRT, optimization profiles with opt = the timed
batch, placement read from a real multi-provider ONNX Runtime profile, the TensorRT compute share, the
CUDA-graph replay comparison, device memory parsing, and Jetson detection from a fake /etc + /sys tree."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from test_bench import _bench_config, tiny_cnn
from typer.testing import CliRunner

import edgecnn.benchmarking.gpu_memory as gpu_memory
from edgecnn.benchmarking import BenchConfig, bench
from edgecnn.benchmarking.bench_run import per_batch_contexts
from edgecnn.benchmarking.measure import MeasureContext
from edgecnn.cli import app
from edgecnn.core.environment import gpu_info
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.jetson import jetson_info, ort_wheel_hint, parse_l4t
from edgecnn.exporting.quantization.quant_config import QuantizationConfig
from edgecnn.exporting.quantization.quantize import quantize_int8
from edgecnn.exporting.quantization.tensorrt import trt_quantization
from edgecnn.runtime import SessionConfig
from edgecnn.runtime.doctor import DoctorConfig, doctor
from edgecnn.runtime.feeds import DatasetSamples
from edgecnn.runtime.graph_replay import check_replay
from edgecnn.runtime.placement import (
    CPU_PROVIDER,
    PlacementConfig,
    check_placement,
    measure_placement,
    placement_from_events,
    placement_from_profile,
)
from edgecnn.runtime.providers import provider_list, trt_opt_batch, trt_profile_shapes
from edgecnn.runtime.trt_qdq import check_trt_int8, trt_int8_problems

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
OPENVINO = "OpenVINOExecutionProvider"
TRT, CUDA = "TensorrtExecutionProvider", "CUDAExecutionProvider"


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny CNN quantized three ways by onnxruntime: TensorRT's export, the settings the TensorRT
    export used before (int32 bias DQ, Q/DQ around every op) and the CPU INT8 default (uint8, asymmetric)."""
    folder = tmp_path_factory.mktemp("trt-rules")
    fp32 = tiny_cnn(folder / "tiny.onnx")
    images = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    trt = trt_quantization(QuantizationConfig(calibration_samples=32))
    before = replace(trt, op_types=None, extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    return {
        "fp32": fp32,
        "trt": quantize_int8(fp32, folder / "trt.onnx", images, "input", trt),
        "before": quantize_int8(fp32, folder / "before.onnx", images, "input", before),
        "cpu": quantize_int8(
            fp32, folder / "cpu.onnx", images, "input", QuantizationConfig(calibration_samples=32)
        ),
    }


# ------------------------------------------------------------------ 1, 2: TensorRT's Q/DQ rules


def test_trt_export_settings_follow_the_rules(quantized: dict[str, Path]) -> None:
    assert trt_int8_problems(quantized["trt"]) == []
    check_trt_int8(quantized["trt"])


def test_the_previous_trt_settings_and_the_cpu_int8_break_them(quantized: dict[str, Path]) -> None:
    before = trt_int8_problems(quantized["before"])
    assert any("int32 bias DequantizeLinear" in p for p in before)
    assert any("stored int8 constant" in p for p in before)  # TensorRT 8.x: weights as Q/DQ pairs
    assert any("Q/DQ before Relu" in p or "Q/DQ before MaxPool" in p for p in before)
    cpu = trt_int8_problems(quantized["cpu"])
    assert any("uint8 zero point" in p for p in cpu)
    assert any("non-zero zero point" in p for p in cpu)  # asymmetric weights
    assert trt_int8_problems(quantized["fp32"]) == [
        "no QuantizeLinear/DequantizeLinear nodes (no INT8 scales)"
    ]


@pytest.mark.parametrize("which", ["cpu", "before", "fp32"])
def test_bench_trt_int8_refuses_a_file_that_breaks_them(quantized: dict[str, Path], which: str) -> None:
    """Refused before any provider starts, with one line naming the export that makes the right file."""
    with pytest.raises(EdgecnnError, match="not a TensorRT INT8 graph") as err:
        bench(_bench_config((quantized[which],), device="tensorrt", precision="int8", iterations=2))
    assert "\n" not in str(err.value) and "--target tensorrt" in str(err.value)
    args = ["bench", str(quantized[which]), "--device", "tensorrt", "--precision", "int8"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "--target tensorrt" in res.stderr and "Traceback" not in res.stderr


# ------------------------------------------------------------------ 3: profiles


def test_profile_opt_is_the_timed_batch(quantized: dict[str, Path]) -> None:
    tiny = quantized["fp32"]
    config = SessionConfig(device="tensorrt", trt_profile_batches=(8, 1, 64), trt_opt_batch=8)
    name, options = provider_list(config, "tensorrt", trt_profile_shapes(tiny, config))[0]
    assert name == TRT
    assert options["trt_profile_min_shapes"] == "input:1x28x28x1"
    assert options["trt_profile_opt_shapes"] == "input:8x28x28x1"
    assert options["trt_profile_max_shapes"] == "input:64x28x28x1"
    # No opt given: the smallest batch (latency), never the largest.
    default = trt_profile_shapes(tiny, replace(config, trt_opt_batch=None))
    assert default is not None and default["trt_profile_opt_shapes"] == "input:1x28x28x1"
    with pytest.raises(EdgecnnError, match="opt batch"):
        SessionConfig(device="tensorrt", trt_profile_batches=(1, 8), trt_opt_batch=4)


def test_bench_opens_one_tensorrt_session_per_timed_batch(quantized: dict[str, Path], tmp_path: Path) -> None:
    config = _bench_config((quantized["fp32"],), device="tensorrt", precision="fp16", batch_sizes=(1, 8, 64),
                    trt_engine_cache=tmp_path / "cache")  # fmt: skip
    ctx = MeasureContext(config, config.session_config(0), DatasetSamples(None), {})
    parts = per_batch_contexts(ctx)
    assert [p.config.batch_sizes for p in parts] == [(1,), (8,), (64,)]
    for part, batch in zip(parts, (1, 8, 64), strict=True):
        shapes = trt_profile_shapes(quantized["fp32"], part.session_config)
        assert shapes == {
            "trt_profile_min_shapes": "input:1x28x28x1",
            "trt_profile_opt_shapes": f"input:{batch}x28x28x1",
            "trt_profile_max_shapes": "input:64x28x28x1",
        }
        # An engine tuned for another batch (or built at another precision) is never loaded from the cache.
        assert part.session_config.trt_engine_cache == tmp_path / "cache" / f"fp16-opt-batch-{batch}"
        assert trt_opt_batch(part.session_config) == batch  # what bench.json records per result
    cpu = BenchConfig(models=(quantized["fp32"],), batch_sizes=(1, 8))
    assert len(per_batch_contexts(MeasureContext(cpu, cpu.session_config(0), DatasetSamples(None), {}))) == 1


# ------------------------------------------------------------------ 6: placement that can fail


def test_placement_of_a_real_multi_provider_run() -> None:
    """A real ONNX Runtime profile (onnxruntime-openvino 1.24.1 on this CPU: OpenVINO EP + CPU EP; the
    tiny CNN with a Hardmax that OpenVINO's EP declines). Read by the real placement code, nodes land on
    two providers: "every node on the first provider" would read 2 of 2 on OpenVINO."""
    placement = placement_from_profile(FIXTURES / "ort_profile_openvino_cpu.json")
    assert placement.by_provider == {OPENVINO: 1, CPU_PROVIDER: 1}
    assert placement.by_provider_ops[CPU_PROVIDER] == ("Hardmax",)
    assert placement.summary() == f"1 of 2 nodes on {OPENVINO}, 1 on {CPU_PROVIDER} (Hardmax)"
    assert placement.engine_compute_share(OPENVINO, 2) == 1.0  # Conv and Gemm went into the subgraph


@pytest.mark.skipif(OPENVINO not in ort.get_available_providers(), reason="needs onnxruntime-openvino")
def test_placement_of_a_live_multi_provider_session(quantized: dict[str, Path]) -> None:
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(quantized["fp32"]))
    model.graph.node.append(helper.make_node("Hardmax", [model.graph.output[0].name], ["h"], name="hardmax"))
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    placement = measure_placement(
        PlacementConfig(model=model.SerializeToString(), providers=(OPENVINO, CPU_PROVIDER))
    )
    assert placement.by_provider == {OPENVINO: 1, CPU_PROVIDER: 1}


def _trt_events(cuda_convs: int) -> list[dict]:
    def event(name: str, op: str, provider: str) -> dict:
        args = {"op_name": op, "provider": provider, "output_type_shape": [{"float": [1, 10]}]}
        return {"cat": "Node", "name": f"{name}_kernel_time", "args": args}

    engine = [event("TRTKernel_graph_m_1_0", "TRTKernel_graph_m_1_0", TRT)]
    return engine + [event(f"conv{i}", "Conv", CUDA) for i in range(cuda_convs)]


def test_tensorrt_check_needs_a_majority_of_compute_nodes() -> None:
    """TensorRT took one engine, CUDA ran 3 of the model's 4 convs one by one: not a TensorRT result."""
    mostly_cuda = placement_from_events(_trt_events(3))
    assert mostly_cuda.compute_by_provider == {CUDA: 3}
    with pytest.raises(EdgecnnError, match="TensorRT took 25% of the 4 compute nodes"):
        check_placement(mostly_cuda, "tensorrt", model_compute_nodes=4)
    check_placement(mostly_cuda, "tensorrt", model_compute_nodes=4, trt_min_compute_share=0.25)
    check_placement(placement_from_events(_trt_events(1)), "tensorrt", model_compute_nodes=4)
    with pytest.raises(EdgecnnError, match="--trt-min-compute-share must be between 0 and 1"):
        SessionConfig(device="tensorrt", trt_min_compute_share=1.5)


# ------------------------------------------------------------------ 7: CUDA-graph replay


def test_replay_comparison_on_real_cpu_outputs(quantized: dict[str, Path]) -> None:
    session = ort.InferenceSession(str(quantized["fp32"]), providers=[CPU_PROVIDER])
    x = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    reference = session.run(None, {"input": x})
    assert check_replay(reference, session.run(None, {"input": x}), "tiny") == 0.0
    stale = session.run(None, {"input": np.zeros_like(x)})  # what a replay bound to stale buffers returns
    with pytest.raises(EdgecnnError, match="CUDA-graph replay differs from a normal run"):
        check_replay(reference, stale, "tiny")
    nudged = [r + np.float32(5e-3) for r in reference]  # within FP16's tolerance, not FP32's
    check_replay(reference, nudged, "tiny", fp16=True)
    with pytest.raises(EdgecnnError):
        check_replay(reference, nudged, "tiny")


# ------------------------------------------------------------------ 5: device memory


def test_device_memory_parsers() -> None:
    smi = "4242, 305\n777, 1024\n4242, 12\n"
    assert gpu_memory.parse_compute_apps(smi, 4242) == (305 + 12) * 1024**2
    assert gpu_memory.parse_compute_apps(smi, 1) is None
    nvmap = (
        "CLIENT        PROCESS      PID        SIZE\n"
        "user          python3     4242     123456K\n"
        "user          Xorg        1000      20M\n"
        "total                              143456K\n"
    )
    assert gpu_memory.parse_nvmap_clients(nvmap, 4242) == 123456 * 1024
    assert gpu_memory.parse_nvmap_clients(nvmap, 1000) == 20 * 1024**2
    assert gpu_memory.parse_vmrss("Name:\tpython3\nVmRSS:\t  204800 kB\nVmSwap:\t0 kB\n") == 204800 * 1024


def test_jetson_memory_from_a_fake_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_jetson(tmp_path)
    monkeypatch.setattr(gpu_memory, "_nvml", lambda pid: None)
    monkeypatch.setattr(gpu_memory, "_nvidia_smi", lambda pid: None)
    (root / "proc/4242").mkdir(parents=True)
    (root / "proc/4242/status").write_text("VmRSS:\t 1000 kB\n")
    assert gpu_memory.sample_device_memory(4242, root) == (1000 * 1024, gpu_memory.VMRSS)
    clients = root / gpu_memory.NVMAP_CLIENTS
    clients.parent.mkdir(parents=True)
    clients.write_text("CLIENT PROCESS PID SIZE\nuser python3 4242 2048K\n")
    assert gpu_memory.sample_device_memory(4242, root) == (2048 * 1024, gpu_memory.NVMAP)


def test_cpu_bench_records_no_device_memory_with_the_reason(quantized: dict[str, Path]) -> None:
    doc = bench(BenchConfig(models=(quantized["fp32"],), iterations=3, warmup=1)).to_document()
    assert doc["models"][0]["gpu_memory"] == {"peak_bytes": None, "method": None,
                                              "reason": "CPU run: no device memory"}  # fmt: skip


# ------------------------------------------------------------------ 9: Jetson


def _fake_jetson(root: Path, release: str = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, "
                 "EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023") -> Path:  # fmt: skip
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/nv_tegra_release").write_text(release + "\n")
    (root / "proc/device-tree").mkdir(parents=True, exist_ok=True)
    (root / "proc/device-tree/model").write_text("NVIDIA Jetson AGX Orin Developer Kit\x00")
    (root / "sys/module/tegra_fuse/parameters").mkdir(parents=True, exist_ok=True)
    (root / "sys/module/tegra_fuse/parameters/tegra_chip_id").write_text("35\n")
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/tegrastats").write_text("")
    return root


def test_jetson_detected_without_nvidia_smi(tmp_path: Path) -> None:
    assert jetson_info(tmp_path) is None
    info = jetson_info(_fake_jetson(tmp_path))
    assert info is not None
    assert (info.l4t, info.jetpack, info.soc, info.tegrastats) == ("35.4.1", "5.1.2", "T234 (Orin)", True)
    assert info.model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert "Jetson Zoo" in ort_wheel_hint(info) and "5.1.2" in ort_wheel_hint(info)
    jp6 = jetson_info(_fake_jetson(tmp_path / "jp6", "# R36 (release), REVISION: 4.3, GCID: 1"))
    assert jp6 is not None and jp6.jetpack == "6.1/6.2" and "jp6/cu126" in ort_wheel_hint(jp6)
    assert parse_l4t("garbage") is None


def test_gpu_info_and_doctor_name_the_jetpack_release(tmp_path: Path) -> None:
    root = _fake_jetson(tmp_path)
    if not gpu_info():  # no nvidia-smi here: the Jetson tree answers
        (gpu,) = gpu_info(root)
        assert gpu["driver"] == "L4T 35.4.1" and gpu["jetpack"] == "5.1.2"
    report = doctor(DoctorConfig(probe_providers=False, root=root))
    assert report.jetson is not None and "L4T 35.4.1 (JetPack 5.1.2)" in report.jetson
    assert any("Jetson Zoo" in h and "--no-deps" in h for h in report.hints)


def test_gpu_check_preflight_accepts_a_jetson_without_nvidia_smi(tmp_path: Path) -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    gpu_check = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = gpu_check  # its dataclasses resolve their module
    spec.loader.exec_module(gpu_check)
    if gpu_info():
        pytest.skip("nvidia-smi is here")
    assert "not a Jetson" in gpu_check.no_gpu_reason(tmp_path)
    assert gpu_check.no_gpu_reason(_fake_jetson(tmp_path)) is None


def test_jetson_requirements_are_the_base_dependencies_without_onnxruntime() -> None:
    """The --no-deps route installs exactly the base dependencies, minus any onnxruntime wheel."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = sorted(d for d in base if not d.startswith("onnxruntime"))
    lines = (ROOT / "requirements-jetson.txt").read_text().splitlines()
    assert sorted(line for line in lines if line and not line.startswith("#")) == wanted


def test_gpu_check_make_target_installs_the_runtime_side_only() -> None:
    make = (ROOT / "Makefile").read_text()
    target = make[make.index("\ngpu-check:") : make.index("\ngpu-bundle:")]
    assert "--bundle" in target and "[dev]" not in target and "$(MAKE) install" not in target
    assert "--no-deps" in target and "requirements-jetson.txt" in target


def test_bench_json_documents_are_json(quantized: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "b"
    bench(BenchConfig(models=(quantized["fp32"],), iterations=3, warmup=1, output_dir=out))
    doc = json.loads((out / "bench.json").read_text())
    assert doc["models"][0]["gpu_memory"]["reason"] == "CPU run: no device memory"
    assert [r["trt_opt_batch"] for r in doc["models"][0]["results"]] == [None]  # TensorRT runs only


# ------------------------------------------------------------------ 4: eval/predict on TensorRT


def test_eval_predict_tensorrt_session(quantized: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    from edgecnn.core.files import sha256_file
    from edgecnn.runtime.trt_session import inference_session

    monkeypatch.setenv("EDGECNN_TRT_CACHE_DIR", str(tmp_path / "engines"))
    tiny = quantized["fp32"]
    fp16 = inference_session(tiny, SessionConfig(device="tensorrt", precision="fp16"), 256)
    assert fp16.trt_precision == "fp16" and fp16.trt_opt_batch == 256
    assert trt_profile_shapes(tiny, fp16) == {
        "trt_profile_min_shapes": "input:1x28x28x1",  # the last, shorter batch fits
        "trt_profile_opt_shapes": "input:256x28x28x1",
        "trt_profile_max_shapes": "input:256x28x28x1",
    }
    cache = fp16.trt_engine_cache
    assert cache is not None and cache.parent == tmp_path / "engines"
    assert cache.name.startswith(
        sha256_file(tiny)[:16] + f"-ort{ort.__version__}-trt"
    ) and cache.name.endswith("-fp16")
    fp32 = inference_session(tiny, SessionConfig(device="tensorrt"), 256)
    assert fp32.trt_engine_cache is not None and fp32.trt_engine_cache.name.endswith("-fp32")
    int8 = inference_session(quantized["trt"], SessionConfig(device="tensorrt", precision="int8"), 32)
    assert int8.trt_engine_cache is not None and int8.trt_engine_cache.name.endswith("-int8")
    given = inference_session(tiny, SessionConfig(device="tensorrt", trt_engine_cache=tmp_path / "mine"), 8)
    assert given.trt_engine_cache == tmp_path / "mine"
    with pytest.raises(EdgecnnError, match="--target tensorrt"):
        inference_session(quantized["cpu"], SessionConfig(device="tensorrt", precision="int8"), 32)
    cpu = SessionConfig(device="cpu", threads=2)
    assert inference_session(tiny, cpu, 32) is cpu
    # auto may land on CUDA or the CPU: profiled for the batch, but no cache folder pinning it to TensorRT.
    auto = inference_session(tiny, SessionConfig(device="auto"), 32)
    assert auto.trt_opt_batch == 32 and auto.trt_engine_cache is None
    assert auto.candidate_devices() == ("tensorrt", "cuda", "cpu")


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_precision_is_one_option_in_each_runtimes_terms(
    quantized: dict[str, Path], tmp_path: Path, command: str
) -> None:
    args = [command, str(quantized["fp32"])] + ([str(tmp_path)] if command == "predict" else [])
    cases = {
        ("--precision", "fp16"): "--precision is OpenVINO's hint (--runtime openvino) or TensorRT's",
        ("--device", "tensorrt", "--precision", "int4"): "unknown precision 'int4'; choose one of fp32",
        ("--device", "tensorrt", "--precision", "bf16"): "TensorRT takes fp32, fp16, int8",
        ("--runtime", "openvino", "--precision", "int8"): "int8 is TensorRT's",
        ("--trt-engine-cache", str(tmp_path)): "--trt-engine-cache needs --device tensorrt",
        ("--device", "tensorrt", "--trt-min-compute-share", "2"): "--trt-min-compute-share must be",
    }
    for extra, line in cases.items():
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code == 1 and line in res.stderr, (extra, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------ 10: enable_fallback=0 and the floor


def test_enable_fallback_is_read_by_the_installed_onnxruntime_and_the_floor_says_so() -> None:
    import inspect

    from onnxruntime.capi import onnxruntime_inference_collection as collection

    from edgecnn.runtime.sessions import FALLBACK_HONOURED, check_fallback_honoured

    assert "enable_fallback" in inspect.signature(collection.Session.__init__).parameters
    check_fallback_honoured(ort.__version__)
    with pytest.raises(EdgecnnError, match="ignores enable_fallback=0"):
        check_fallback_honoured("1.22.0")
    deps = (ROOT / "pyproject.toml").read_text()
    floor = ".".join(map(str, FALLBACK_HONOURED))
    assert f'"onnxruntime-gpu>={floor},<2;' in deps and f'"onnxruntime>={floor},<2;' in deps


# ------------------------------------------------------------------ 8: tune on a GPU


def test_gpu_tune_candidates(tmp_path: Path, quantized: dict[str, Path]) -> None:
    import shutil

    from edgecnn.benchmarking.gpu_tune import gpu_options

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(quantized["fp32"], bundle / "model.onnx")
    shutil.copy(quantized["fp32"], bundle / "model.fp16.onnx")
    (tmp_path / "bundle-trt").mkdir()
    shutil.copy(quantized["trt"], tmp_path / "bundle-trt" / "model.int8-trt.onnx")
    cuda = [(o.file.name, o.precision, o.cuda_graphs) for o in gpu_options(bundle, "cuda")]
    assert cuda == [("model.onnx", "fp32", False), ("model.fp16.onnx", "fp16", False),
                    ("model.onnx", "fp32", True), ("model.fp16.onnx", "fp16", True)]  # fmt: skip
    trt = gpu_options(bundle, "tensorrt")
    assert [(o.file.name, o.precision, o.cuda_graphs) for o in trt[:3]] == [
        ("model.onnx", "fp32", False), ("model.onnx", "fp16", False), ("model.int8-trt.onnx", "int8", False)
    ]  # fmt: skip
    assert len(trt) == 6 and trt[5].label == "int8 + cuda graphs"
    session = trt[5].session("tensorrt")
    assert session.precision == "int8" and session.cuda_graphs and session.device == "tensorrt"
    # CUDA runs each file at its own precision: model.fp16.onnx is its FP16, no TensorRT option.
    assert gpu_options(bundle, "cuda")[1].session("cuda").precision is None
    # Each option is a valid bench run (TensorRT + CUDA graphs take one batch: tune times one at a time).
    for option in trt:
        BenchConfig(models=(option.file,), session=option.session("tensorrt"), batch_sizes=(8,),
                    io_binding=option.cuda_graphs)  # fmt: skip


def test_tune_device_is_validated_and_gpu_records_are_not_applied_on_cpu(tmp_path: Path) -> None:
    from edgecnn.benchmarking.tune import TuneConfig
    from edgecnn.runtime.device_record import DEVICE_JSON, DEVICE_SCHEMA, read_device_record

    bundle = tmp_path / "b"
    bundle.mkdir()
    tiny_cnn(bundle / "model.onnx")
    with pytest.raises(EdgecnnError, match="tune --device takes cpu, cuda or tensorrt"):
        TuneConfig(bundle=bundle, session=SessionConfig(device="auto"))
    with pytest.raises(EdgecnnError, match="set neither on its session"):
        TuneConfig(bundle=bundle, session=SessionConfig(device="tensorrt", precision="fp16"))
    TuneConfig(bundle=bundle, session=SessionConfig(device="tensorrt"))
    # A GPU tune times ORT's providers only, at their own threading: the CPU tune's lists are refused.
    with pytest.raises(EdgecnnError, match="--threads is for a CPU tune; --device cuda"):
        TuneConfig(bundle=bundle, session=SessionConfig(device="cuda"), thread_counts=(1, 2))
    with pytest.raises(EdgecnnError, match="--runtimes is for a CPU tune; --device tensorrt"):
        TuneConfig(bundle=bundle, session=SessionConfig(device="tensorrt"), runtime_list=("openvino",))
    record = {"kind": DEVICE_SCHEMA, "picks": {}, "config": {"session": {"device": "tensorrt"}}}
    (bundle / DEVICE_JSON).write_text(json.dumps(record))
    with pytest.raises(EdgecnnError, match="tuned for --device tensorrt"):
        read_device_record(bundle)
