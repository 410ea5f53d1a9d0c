"""Per-node placement read from real ONNX Runtime sessions (profiler events), and the GPU-request check.

The CUDA/TensorRT cases use the real onnxruntime-gpu wheel: on a machine without CUDA libraries its
providers are registered but cannot start, which is exactly the silent-fallback path to catch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.placement import (
    Placement,
    PlacementConfig,
    check_placement,
    measure_placement,
    placement_from_events,
    placement_from_session,
    temporary_profile_prefix,
)

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def shape_model() -> bytes:
    """x[N,4] -> MatMul -> Reshape to [Shape[0], 3] computed by Shape/Gather/Unsqueeze/Concat -> Relu."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    inits = [
        numpy_helper.from_array(np.ones((4, 3), np.float32), "w"),
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([3], np.int64), "three"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
        helper.make_node("Shape", ["m"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "three"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["m", "target"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "shapes", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_placement_of_a_real_cpu_session(capfd: pytest.CaptureFixture[str]) -> None:
    placement = measure_placement(PlacementConfig(model=shape_model(), batch=5, graph_optimization="disable"))
    assert placement.nodes_total == 7
    assert placement.by_provider == {CPU: 7}
    assert placement.by_provider_ops[CPU] == (
        "Concat",
        "Gather",
        "MatMul",
        "Relu",
        "Reshape",
        "Shape",
        "Unsqueeze",
    )
    # The float Reshape and MatMul move activations; only the int64 shape arithmetic counts as shape ops.
    assert set(placement.cpu_shape_ops) == {"shape", "gather", "unsqueeze", "concat"}
    assert placement.summary() == "7 of 7 nodes on CPUExecutionProvider"
    doc = placement.to_dict()
    assert doc["by_provider"] == {CPU: 7} and doc["summary"] == placement.summary()
    assert "profiler" in doc["method"]
    check_placement(placement, "cpu")  # nothing to refuse on CPU
    assert capfd.readouterr().out == ""  # profiling never writes to stdout


def test_optimized_graph_is_what_is_counted(tmp_path: Path) -> None:
    """With ORT's optimizations on, the shape chain of a fixed-shape graph is folded away: placement
    counts the nodes that really ran, not the nodes in the file."""
    placement = measure_placement(PlacementConfig(model=shape_model(), batch=2))
    assert 2 <= placement.nodes_total < 7 and set(placement.by_provider) == {CPU}


def test_placement_from_a_live_session_ends_profiling_and_cleans_up(tmp_path: Path) -> None:
    with temporary_profile_prefix() as prefix:
        folder = Path(prefix).parent
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = prefix
        session = ort.InferenceSession(shape_model(), options, providers=[CPU], enable_fallback=0)
        session.run(None, {"x": np.ones((3, 4), np.float32)})
        placement = placement_from_session(session)
        assert placement.by_provider[CPU] == placement.nodes_total > 0
        assert list(folder.iterdir()) == []  # the profile file is gone
        session.run(None, {"x": np.ones((3, 4), np.float32)})
        assert session.end_profiling() == ""  # later (timed) runs are not profiled
    assert not folder.exists()


def test_session_without_profiling_is_an_error() -> None:
    session = ort.InferenceSession(shape_model(), providers=[CPU])
    session.run(None, {"x": np.ones((1, 4), np.float32)})
    with pytest.raises(EdgecnnError, match="profiling"):
        placement_from_session(session)


def test_a_cuda_request_that_runs_on_cpu_is_caught() -> None:
    """The real onnxruntime-gpu wheel here: CUDA is registered, fails to load, ORT runs on CPU without
    raising. Placement shows it, and the check refuses the run as a CUDA result."""
    if CUDA not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider")
    placement = measure_placement(PlacementConfig(model=shape_model(), providers=(CUDA,)))
    if placement.by_provider.get(CUDA):
        pytest.skip("CUDA really runs here")
    assert placement.by_provider == {CPU: placement.nodes_total}
    with pytest.raises(EdgecnnError) as err:
        check_placement(placement, "cuda")
    message = str(err.value)
    assert "\n" not in message and "no node ran on CUDAExecutionProvider" in message


def test_a_tensorrt_request_that_cannot_start_raises_instead_of_falling_back(
    capfd: pytest.CaptureFixture[str],
) -> None:
    if TRT not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no TensorRT provider")
    try:
        placement = measure_placement(PlacementConfig(model=shape_model(), providers=(TRT,)))
    except EdgecnnError as exc:
        assert "\n" not in str(exc)
    else:
        if placement.by_provider.get(TRT):
            pytest.skip("TensorRT really runs here")
        with pytest.raises(EdgecnnError):
            check_placement(placement, "tensorrt")
    out = capfd.readouterr().out
    assert "Falling back" not in out and "EP Error" not in out  # ORT's fallback banner never reaches stdout


def mixed_placement() -> Placement:
    return Placement(
        nodes_total=8,
        by_provider={CPU: 3, CUDA: 5},
        by_provider_ops={CPU: ("ConvInteger", "Gather", "Shape"), CUDA: ("Conv", "Gemm", "Relu")},
        cpu_shape_ops=("shape_1", "gather_2"),
    )


def test_summary_names_every_provider_and_the_cpu_shape_ops() -> None:
    assert mixed_placement().summary() == (
        "5 of 8 nodes on CUDAExecutionProvider, 3 on CPUExecutionProvider "
        "(ConvInteger, Gather, Shape; shape ops: shape_1, gather_2)"
    )


def test_check_refuses_cpu_nodes_on_a_gpu_request_unless_allowed() -> None:
    with pytest.raises(EdgecnnError) as err:
        check_placement(mixed_placement(), "cuda")
    message = str(err.value)
    assert "1 of 8 nodes ran on CPUExecutionProvider" in message and "--allow-cpu-nodes" in message
    check_placement(mixed_placement(), "cuda", allow_cpu_nodes=True)


def test_check_accepts_cpu_shape_ops_and_trt_nodes_handed_to_cuda() -> None:
    shape_only = Placement(
        nodes_total=4,
        by_provider={TRT: 1, CUDA: 1, CPU: 2},
        by_provider_ops={TRT: ("TRTKernel",), CUDA: ("Softmax",), CPU: ("Gather", "Shape")},
        cpu_shape_ops=("shape", "gather"),
    )
    check_placement(shape_only, "tensorrt")
    assert shape_only.summary().startswith(
        "1 of 4 nodes on TensorrtExecutionProvider, 1 on CUDAExecutionProvider"
    )
    with pytest.raises(EdgecnnError, match="unknown device"):
        check_placement(shape_only, "tpu")


def test_profile_events_tensorrt_engines_and_repeated_runs() -> None:
    def event(name: str, op: str, provider: str, out: list[dict]) -> dict:
        args = {"op_name": op, "provider": provider, "output_type_shape": out}
        return {"cat": "Node", "name": f"{name}_kernel_time", "args": args}

    events = [
        {"cat": "Session", "name": "session_initialization", "args": {}},
        {"cat": "Node", "name": "shape_fence_before", "args": {"op_name": "Shape"}},
        event("TRTKernel_graph_main_123_0", "TRTKernel_graph_main_123_0", TRT, [{"float": [8, 10]}]),
        event("shape", "Shape", CPU, [{"int64": [4]}]),
        event("reshape", "Reshape", CPU, [{"float": [8, 10]}]),
        event("shape", "Shape", CPU, [{"int64": [4]}]),  # a second run: the same node, counted once
    ]
    placement = placement_from_events(events)
    assert placement.nodes_total == 3
    assert placement.by_provider_ops[TRT] == ("TRTKernel",)
    assert placement.cpu_shape_ops == ("shape",)
    with pytest.raises(EdgecnnError, match="no node events"):
        placement_from_events(events[:2])


def test_config_is_validated() -> None:
    with pytest.raises(EdgecnnError):
        PlacementConfig(model=b"", providers=())
    with pytest.raises(EdgecnnError):
        PlacementConfig(model=b"", batch=0)
    with pytest.raises(EdgecnnError, match="does not exist"):
        PlacementConfig(model=Path("/nonexistent.onnx"))


def test_cut_off_profile_names_the_full_temp_directory(tmp_path: Path) -> None:
    """ORT says nothing when its profile write fails half-way (a full TMPDIR): the line must say so."""
    from edgecnn.runtime.placement import placement_from_profile

    profile = tmp_path / "edgecnn-placement-1-x" / "profile.json"
    profile.parent.mkdir()
    profile.write_text('[{"cat": "Node", "name": "conv_kernel_time", "args": {"provid')
    with pytest.raises(EdgecnnError, match="could not finish writing its profile .*temp directory .* full"):
        placement_from_profile(profile)
