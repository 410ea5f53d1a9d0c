"""Execution providers: option validation, provider resolution, fallback detection and IOBinding.

The CUDA-unavailable path is real here (onnxruntime-gpu without CUDA libraries): see
tests/test_gpu_truth.py. Only "CUDA initialised" needs a fake onnxruntime session that reports which
providers "really" initialised; the CPU paths run for real.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from test_bench import tiny_cnn

from edgecnn import runtime
from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime import SessionConfig, bind_io, open_session, resolve_shape, sessions
from edgecnn.runtime.providers import provider_list

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cnn(tmp_path_factory.mktemp("rt") / "tiny.onnx")


class FakeSession:
    """Stands in for InferenceSession: 'initialises' only the providers in `works`, like ORT does."""

    works: set[str] = {"CPUExecutionProvider"}
    created: list[list] = []

    def __init__(self, path: str, sess_options=None, providers=None, enable_fallback: int = 1) -> None:
        FakeSession.created.append(list(providers))
        names = [p[0] if isinstance(p, tuple) else p for p in providers]
        self._providers = [n for n in names if n in FakeSession.works]

    def get_providers(self) -> list[str]:
        return self._providers

    def get_modelmeta(self):
        return SimpleNamespace(custom_metadata_map=dict(FakeSession.metadata))

    metadata: dict[str, str] = {}


@pytest.fixture
def fake_ort(monkeypatch: pytest.MonkeyPatch):
    ort = runtime.import_ort()
    FakeSession.created = []
    FakeSession.works = {"CPUExecutionProvider"}
    FakeSession.metadata = {}
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setattr(ort, "get_available_providers", lambda: list(ALL))
    monkeypatch.setattr(sessions, "preload_gpu_libraries", lambda: None)
    return FakeSession


# ------------------------------------------------------------------------------------ options


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "gpu"}, "unknown device"),
        ({"threads": -1}, "thread"),
        ({"graph_optimization": "max"}, "graph optimization"),
        ({"device": "cpu", "cuda_graphs": True}, "--cuda-graphs"),
        ({"device": "cuda", "precision": "fp16"}, "TensorRT's \\(--device tensorrt\\)"),
        ({"device": "cpu", "precision": "int8"}, "runs each file at its own precision"),
        ({"device": "tensorrt", "precision": "bf16"}, "bf16 is OpenVINO's.*TensorRT takes fp32, fp16, int8"),
        ({"device": "tensorrt", "precision": "f16"}, "unknown precision 'f16'; choose one of fp32"),
        ({"runtime": "openvino", "precision": "int8"}, "int8 is TensorRT's"),
        ({"device": "cuda", "trt_engine_cache": Path("cache")}, "--trt-engine-cache needs --device tensorrt"),
        ({"device": "tensorrt", "trt_min_compute_share": 1.5}, "--trt-min-compute-share"),
        ({"device": "cpu", "trt_min_compute_share": 0.9}, "--trt-min-compute-share needs --device tensorrt"),
        ({"device": "cuda", "device_id": -1}, "device id"),
    ],
)
def test_session_config_refuses(kwargs: dict, message: str) -> None:
    with pytest.raises(EdgecnnError, match=message):
        SessionConfig(**kwargs)


def test_engine_cache_must_be_a_directory(tmp_path: Path) -> None:
    f = tmp_path / "cache"
    f.write_text("x")
    with pytest.raises(EdgecnnError, match="not a directory"):
        SessionConfig(device="tensorrt", trt_engine_cache=f)


def test_candidates_honour_every_option() -> None:
    assert SessionConfig(device="auto").candidate_devices() == ("tensorrt", "cuda", "cpu")
    assert SessionConfig(device="auto", cuda_graphs=True).candidate_devices() == ("tensorrt", "cuda")
    assert SessionConfig(device="auto", precision="fp16").candidate_devices() == ("tensorrt",)
    assert SessionConfig(device="cuda").candidate_devices() == ("cuda",)


def test_provider_options(tmp_path: Path) -> None:
    cuda = provider_list(SessionConfig(device="cuda", cuda_graphs=True, device_id=1), "cuda")
    assert cuda[0] == ("CUDAExecutionProvider", {"device_id": "1", "enable_cuda_graph": "1"})
    assert cuda[-1] == "CPUExecutionProvider"
    cache = tmp_path / "engines"
    config = SessionConfig(device="tensorrt", precision="int8", trt_engine_cache=cache)
    trt = provider_list(config, "tensorrt")
    name, opts = trt[0]
    assert name == "TensorrtExecutionProvider"
    assert opts["trt_fp16_enable"] == "False" and opts["trt_int8_enable"] == "True"
    # One --precision, in TensorRT's terms: fp16 its FP16 kernels, fp32 (the default) neither flag.
    fp16 = provider_list(SessionConfig(device="tensorrt", precision="fp16"), "tensorrt")[0][1]
    assert fp16["trt_fp16_enable"] == "True" and fp16["trt_int8_enable"] == "False"
    fp32 = provider_list(SessionConfig(device="tensorrt"), "tensorrt")[0][1]
    assert fp32["trt_fp16_enable"] == "False" and fp32["trt_int8_enable"] == "False"
    assert opts["trt_engine_cache_enable"] == "True" and opts["trt_engine_cache_path"] == str(cache)
    assert cache.is_dir()  # created up front so TensorRT can write engines there
    assert [p[0] if isinstance(p, tuple) else p for p in trt] == ALL
    assert provider_list(SessionConfig(), "cpu") == ["CPUExecutionProvider"]


def test_session_options_apply_threads_and_spinning() -> None:
    so = runtime.session_options(SessionConfig(threads=3, inter_op_threads=2, allow_spinning=False))
    assert so.intra_op_num_threads == 3 and so.inter_op_num_threads == 2
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


# ------------------------------------------------------------------------------------ provider truth


def test_cuda_that_initialises_is_used(fake_ort, tiny: Path) -> None:
    fake_ort.works = {"CUDAExecutionProvider", "CPUExecutionProvider"}
    _, provider = open_session(tiny, SessionConfig(device="cuda"))
    assert provider == "CUDAExecutionProvider"


def test_missing_provider_in_build_is_an_error(fake_ort, monkeypatch: pytest.MonkeyPatch, tiny: Path) -> None:
    monkeypatch.setattr(runtime.import_ort(), "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(EdgecnnError, match="does not include"):
        open_session(tiny, SessionConfig(device="tensorrt"))


def test_auto_picks_the_best_that_really_runs(fake_ort, tiny: Path) -> None:
    fake_ort.works = {"CUDAExecutionProvider", "CPUExecutionProvider"}  # TensorRT "fails to load"
    notes: list[str] = []
    _, provider = open_session(tiny, SessionConfig(device="auto"), notes)
    assert provider == "CUDAExecutionProvider"
    assert len(notes) == 1 and "picked CUDAExecutionProvider" in notes[0] and "tensorrt" in notes[0]
    assert [c[0][0] for c in fake_ort.created] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]


def test_real_cuda_request_on_this_machine(tiny: Path) -> None:
    from edgecnn.core.environment import gpu_info

    if gpu_info():
        pytest.skip("a GPU is visible here")
    with pytest.raises(EdgecnnError, match="cuda"):
        open_session(tiny, SessionConfig(device="cuda"))


def test_check_model_file(tmp_path: Path) -> None:
    with pytest.raises(EdgecnnError, match="does not exist"):
        runtime.check_model_file(tmp_path / "x.onnx")
    with pytest.raises(EdgecnnError, match="directory"):
        runtime.check_model_file(tmp_path)
    z = tmp_path / "model.keras"
    z.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(EdgecnnError, match="not an ONNX model"):
        runtime.check_model_file(z)


# ------------------------------------------------------------------------------------ IOBinding


def test_resolve_shape() -> None:
    assert resolve_shape(["batch", 28, 28, 1], 8) == (8, 28, 28, 1)
    assert resolve_shape([None, 10], 4) == (4, 10)
    assert resolve_shape(["N", "classes"], 4, {"N"}) is None
    assert resolve_shape(["unk__1", "N"], 4, {"N"}) == (4, 4)


def test_bind_io_matches_plain_run(tiny: Path) -> None:
    session, provider = open_session(tiny)
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    bound = bind_io(session, provider, {"input": x})
    assert set(bound.outputs) == {"probabilities"}  # pre-allocated: the timed call allocates nothing
    bound.run()
    (got,) = bound.output_arrays()
    (want,) = session.run(None, {"input": x})
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert got.shape == (5, 10)
    # On CPU the binding reads the host array in place (zero-copy), so new data needs no re-binding.
    x[:] = 0
    bound.run()
    (zeros,) = session.run(None, {"input": np.zeros_like(x)})
    np.testing.assert_allclose(bound.output_arrays()[0], zeros, rtol=1e-6, atol=1e-7)


def test_bind_io_refuses_missing_inputs_and_bad_graph_ids(tiny: Path) -> None:
    session, provider = open_session(tiny)
    with pytest.raises(EdgecnnError, match="no data for model input"):
        bind_io(session, provider, {"other": np.zeros((1, 28, 28, 1), np.float32)})
    for bad in (0, -2):
        with pytest.raises(EdgecnnError, match="graph ids"):
            runtime.run_options(bad)
    assert runtime.run_options(3).get_run_config_entry("gpu_graph_id") == "3"
    with pytest.raises(EdgecnnError, match="IOBinding"):
        runtime.ort_device("OpenVINOExecutionProvider")


def test_auto_skips_gpus_for_a_cpu_optimized_graph(fake_ort, tiny: Path) -> None:
    """A graph from `edgecnn optimize` is refused on CUDA, so --device auto lands on CPU and says why."""
    import json

    import onnx

    from edgecnn.runtime.target import TARGET_KEY, current_cpu_target

    fake_ort.works = {"CUDAExecutionProvider", "CPUExecutionProvider"}
    fake_ort.metadata = {TARGET_KEY: json.dumps(current_cpu_target())}
    # The target is read from the file itself, before any session is created.
    model = onnx.load(str(tiny))
    onnx.helper.set_model_props(model, fake_ort.metadata)
    optimized = tiny.with_name("tiny.cpu.onnx")
    onnx.save(model, str(optimized))
    notes: list[str] = []
    _, provider = runtime.open_session(optimized, SessionConfig(device="auto"), notes)
    assert provider == "CPUExecutionProvider"
    assert "optimized for one CPU" in notes[0]
    with pytest.raises(EdgecnnError, match="cannot run on device 'cuda'"):
        runtime.open_session(optimized, SessionConfig(device="cuda"))
