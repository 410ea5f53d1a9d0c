"""Which ONNX Runtime execution provider serves each device, with which options, and where it keeps
its tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.session_config import SessionConfig

PROVIDER_FOR_DEVICE = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
DEVICE_FOR_PROVIDER = {v: k for k, v in PROVIDER_FOR_DEVICE.items()}
# Where a provider keeps its tensors, as OrtValue/IOBinding name it.
ORT_DEVICE_FOR_PROVIDER = {
    "CPUExecutionProvider": "cpu",
    "CUDAExecutionProvider": "cuda",
    "TensorrtExecutionProvider": "cuda",
}


def provider_list(
    config: SessionConfig, device: str, profile_shapes: dict[str, str] | None = None
) -> list[Any]:
    """The `providers=` argument of an InferenceSession on `device`, best provider first.
    `profile_shapes` (TensorRT): `trt_profile_min/opt/max_shapes` values, see `trt_profile_shapes`."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    cuda_opts: dict[str, Any] = {"device_id": str(config.device_id)}
    if device == "cuda":
        if config.cuda_graphs:
            cuda_opts["enable_cuda_graph"] = "1"
        return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
    # CUDA stays in the list for the nodes TensorRT does not take; CPU for the ones CUDA does not have.
    return [
        ("TensorrtExecutionProvider", {**_tensorrt_options(config), **(profile_shapes or {})}),
        ("CUDAExecutionProvider", cuda_opts),
        "CPUExecutionProvider",
    ]


def _tensorrt_options(config: SessionConfig) -> dict[str, Any]:
    # Provider options travel as strings through the C API; "True"/"False" is what the TRT EP parses.
    # SessionConfig's precision in TensorRT's terms (its checks refused anything TensorRT does not take).
    precision = config.trt_precision
    trt_opts: dict[str, Any] = {
        "device_id": str(config.device_id),
        "trt_fp16_enable": str(precision == "fp16"),
        "trt_int8_enable": str(precision == "int8"),
    }
    if precision == "int8":
        # Our INT8 exports are QDQ graphs: TensorRT takes the scales from the Q/DQ nodes, no calibration.
        trt_opts["trt_int8_use_native_calibration_table"] = "False"
    if config.cuda_graphs:
        trt_opts["trt_cuda_graph_enable"] = "True"
    if config.trt_engine_cache is not None:
        cache = Path(config.trt_engine_cache)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or exc
            raise EdgecnnError(f"cannot create TensorRT engine cache {cache}: {reason}") from None
        # Building an engine takes minutes; the timing cache makes rebuilds for new shapes much faster.
        trt_opts.update(
            trt_engine_cache_enable="True",
            trt_engine_cache_path=str(cache),
            trt_timing_cache_enable="True",
            trt_timing_cache_path=str(cache),
        )
    return trt_opts


def ort_device(provider: str) -> str:
    """The OrtValue device name ("cpu" or "cuda") where `provider` wants its inputs and outputs."""
    try:
        return ORT_DEVICE_FOR_PROVIDER[provider]
    except KeyError:
        raise EdgecnnError(f"no IOBinding device known for {provider}; run without --io-binding") from None


def trt_opt_batch(config: SessionConfig) -> int | None:
    """The batch TensorRT tunes its kernels for (the profile's opt shape); None without a profile."""
    if not config.trt_profile_batches:
        return None
    return config.trt_opt_batch if config.trt_opt_batch is not None else min(config.trt_profile_batches)


def trt_profile_shapes(path: Path, config: SessionConfig) -> dict[str, str] | None:
    """Explicit TensorRT optimization-profile shapes from the batch sizes that will run
    (`config.trt_profile_batches`): min = smallest, max = largest, opt = `config.trt_opt_batch` (the
    batch being timed; default the smallest). TensorRT picks its kernels for the opt shape and only
    guarantees the others run, so bench opens one session per timed batch, each tuned for its batch.
    Without explicit shapes the TRT EP builds an engine for the first shape it sees and rebuilds it,
    mid-run, for each new batch size."""
    if not config.trt_profile_batches:
        return None
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        raise EdgecnnError(f"cannot read the inputs of {path}: {type(exc).__name__}") from None
    initializers = {i.name for i in graph.initializer}
    low, high = min(config.trt_profile_batches), max(config.trt_profile_batches)
    opt = trt_opt_batch(config)
    shapes: dict[str, list[str]] = {"min": [], "opt": [], "max": []}
    for arg in graph.input:
        if arg.name in initializers:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in arg.type.tensor_type.shape.dim]
        if not dims or any(d is None for d in dims[1:]):
            raise EdgecnnError(
                f"{path}: input {arg.name!r} has shape {dims}; TensorRT profile shapes need every "
                "dimension but the batch fixed"
            )
        rest = "x".join(str(d) for d in dims[1:])
        for key, batch in (("min", low), ("opt", opt), ("max", high)):
            shapes[key].append(f"{arg.name}:{batch}" + (f"x{rest}" if rest else ""))
    return {f"trt_profile_{key}_shapes": ",".join(value) for key, value in shapes.items()}
