"""ONNX variants of an FP32 export: INT8 (static QDQ, calibrated on real images), FP16 and dynamic INT8.

Only onnx and onnxruntime are used here; the accuracy-aware search evaluates candidates with
`edgecnn.variant_eval` and leaves files in a caller-owned directory. Every setting that decides how
a model is quantized lives in the frozen `QuantizationConfig`, so tuning a default is a one-line change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.text import one_line

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANT_TYPES = ("qint8", "quint8")
VARIANTS = ("int8", "fp16", "dynamic")
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx",
                 "dynamic": "model.dynamic.onnx"}  # fmt: skip

DYNAMIC_WARNING = (
    "dynamic quantization turns Conv into ConvInteger, which ONNX Runtime runs far slower than FP32 "
    "Conv on most CPUs; prefer --quantize int8 (static) for CNNs"
)
FP16_NOTE = "GPU variant: FP16 is meant for GPUs (CUDA/TensorRT); most CPUs emulate it and run it slower"


@dataclass(frozen=True)
class QuantizationConfig:
    """How static INT8 quantization is done (mirrors Optimum's QuantizationConfig fields).

    Defaults: per-tensor asymmetric weights, MinMax calibration on 500 training images, unsigned
    activations and signed weights (U8S8, the format ORT's x86/ARM int8 kernels are fastest with),
    every quantizable op type. Asymmetric per-tensor weights (WeightSymmetric=False) send ORT's
    QLinearConv down its im2col + GEMM path, which uses AMX/VNNI GEMM kernels; symmetric weights
    pick the direct symmetric-conv kernel, measured 2.9x slower on tf1-cnn's 64->128 conv at batch
    64 (1.36 ms vs 3.9 ms) with the same accuracy. The accuracy-aware search still tries
    per-channel when per-tensor misses the bound.
    """

    per_channel: bool = False
    calibration_method: str = "minmax"
    calibration_samples: int = 500
    calibration_batch_size: int = 50
    activation_type: str = "quint8"
    weight_type: str = "qint8"
    reduce_range: bool = False
    nodes_to_exclude: tuple[str, ...] = ()
    op_types: tuple[str, ...] | None = None  # None = every op type ORT can quantize
    # Softmax in INT8 would hand out probabilities in steps of 1/256 (ties in the top-1) for no speed-up.
    float_op_types: tuple[str, ...] = ("Softmax",)
    # The Gemm/MatMul feeding a float op hands it float logits (graph_opt.float_logits): one fused
    # QGemm with float output instead of QGemm -> DequantizeLinear, ~4% faster at batch 1.
    float_logits: bool = True
    extra_options: Mapping[str, Any] = field(default_factory=lambda: {"WeightSymmetric": False})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.calibration_method not in CALIBRATION_METHODS:
            raise EdgecnnError(
                f"unknown calibration method {self.calibration_method!r}; "
                f"choose one of {', '.join(CALIBRATION_METHODS)}"
            )
        if self.calibration_samples < 1:
            raise EdgecnnError("calibration samples must be >= 1")
        if self.calibration_batch_size < 1:
            raise EdgecnnError("calibration batch size must be >= 1")
        for what, value in (("activation", self.activation_type), ("weight", self.weight_type)):
            if value not in QUANT_TYPES:
                raise EdgecnnError(f"{what} type must be one of {', '.join(QUANT_TYPES)}, not {value!r}")
        if self.op_types is not None and not self.op_types:
            raise EdgecnnError("op_types must name at least one op type (or be None for all)")

    def describe(self) -> str:
        parts = [
            "per-channel" if self.per_channel else "per-tensor",
            self.calibration_method,
            f"{self.calibration_samples} images",
        ]
        if self.nodes_to_exclude:
            parts.append(f"float: {', '.join(self.nodes_to_exclude)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "per_channel": self.per_channel,
            "calibration_method": self.calibration_method,
            "calibration_samples": self.calibration_samples,
            "activation_type": self.activation_type,
            "weight_type": self.weight_type,
            "reduce_range": self.reduce_range,
            "nodes_to_exclude": list(self.nodes_to_exclude),
            "op_types": None if self.op_types is None else list(self.op_types),
            "float_op_types": list(self.float_op_types),
            "float_logits": self.float_logits,
            "extra_options": dict(self.extra_options),
            "seed": self.seed,
        }


def _ort_quant() -> Any:
    import onnxruntime.quantization as q

    return q


def check_calibration_images(images: np.ndarray, graph_shape: tuple[int, ...]) -> None:
    """Refuse calibration data whose per-image shape is not what the graph input takes."""
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(graph_shape):
        got = "x".join(str(d) for d in images.shape[1:]) if images.ndim == 4 else str(images.shape)
        raise EdgecnnError(
            f"calibration images are {got} but the model input is "
            f"{'x'.join(str(d) for d in graph_shape)}; use the dataset the model was trained on (--dataset)"
        )
    if images.dtype != np.float32:
        raise EdgecnnError(f"calibration images must be float32 (normalized), not {images.dtype}")


def make_data_reader(images: np.ndarray, input_name: str, batch_size: int) -> Any:
    """A CalibrationDataReader over prepared float32 images, rewindable for repeated use."""
    q = _ort_quant()

    class _Reader(q.CalibrationDataReader):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._pos = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self._pos >= len(images):
                return None
            batch = images[self._pos : self._pos + batch_size]
            self._pos += batch_size
            return {input_name: np.ascontiguousarray(batch)}

        def rewind(self) -> None:
            self._pos = 0

    return _Reader()


def select_calibration_images(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` training images drawn without replacement (seeded), so calibration is reproducible."""
    if count >= len(images):
        return images
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.choice(len(images), size=count, replace=False))]


def preprocess_for_quantization(fp32_path: Path, out_path: Path) -> Path:
    """quant_pre_process: shape inference + ORT's graph optimizations so QDQ sees fused Conv/Relu."""
    q = _ort_quant()
    try:
        with quiet_libraries():
            q.quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=False)
    except Exception as exc:  # noqa: BLE001 - pre-processing is an optimisation; quantize without it
        logging.getLogger(__name__).debug("quant_pre_process failed: %s", exc)
        return fp32_path
    return out_path


def nodes_of_types(model_path: Path, op_types: tuple[str, ...]) -> list[str]:
    if not op_types:
        return []
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in op_types and n.name]


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration_images: np.ndarray,
    input_name: str,
    config: QuantizationConfig,
    *,
    preprocessed: Path | None = None,
) -> Path:
    """Static INT8 in QDQ format, calibrated on `calibration_images` (prepared float32, graph layout)."""
    q = _ort_quant()
    method = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }[config.calibration_method]
    qtype = {"qint8": q.QuantType.QInt8, "quint8": q.QuantType.QUInt8}
    images = select_calibration_images(calibration_images, config.calibration_samples, config.seed)
    source = preprocessed or fp32_path
    exclude = list(config.nodes_to_exclude) + nodes_of_types(source, config.float_op_types)
    try:
        with quiet_libraries():
            q.quantize_static(
                str(source),
                str(out_path),
                make_data_reader(images, input_name, config.calibration_batch_size),
                quant_format=q.QuantFormat.QDQ,
                op_types_to_quantize=list(config.op_types) if config.op_types else None,
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                activation_type=qtype[config.activation_type],
                weight_type=qtype[config.weight_type],
                nodes_to_exclude=list(dict.fromkeys(exclude)) or None,
                calibrate_method=method,
                extra_options=dict(config.extra_options),
            )
    except Exception as exc:  # noqa: BLE001 - ORT raises many types; the user gets one line
        msg = one_line(exc)
        raise EdgecnnError(f"INT8 quantization failed ({config.describe()}): {msg}") from None
    if config.float_logits and config.float_op_types:
        import onnx

        from edgecnn.exporting.graph_rewrites import float_logits

        model = onnx.load(str(out_path))
        if float_logits(model, tuple(config.float_op_types)):
            onnx.checker.check_model(model)
            onnx.save(model, str(out_path))
    return out_path


def convert_fp16(fp32_model: Any) -> Any:
    """FP16 weights and compute with float32 inputs/outputs, so callers feed the same tensors."""
    from onnxruntime.transformers import float16

    try:
        with quiet_libraries():
            model = float16.convert_float_to_float16(fp32_model, keep_io_types=True)
    except Exception as exc:  # noqa: BLE001
        raise EdgecnnError(f"FP16 conversion failed: {one_line(exc)}") from None
    # keep_io_types appends its boundary Casts at the end of the node list; ONNX Runtime accepts that
    # but the ONNX checker (and other runtimes) require topological order.
    topological_sort(model.graph)
    return model


def topological_sort(graph: Any) -> None:
    """Reorder graph.node so every node comes after the producers of its inputs (in place)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise EdgecnnError("FP16 conversion produced a graph with a cycle or a missing input")
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered, strict=True):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def quantize_dynamic_int8(fp32_path: Path, out_path: Path, config: QuantizationConfig) -> Path:
    """Dynamic INT8: weights quantized offline, activations at run time (no calibration data)."""
    q = _ort_quant()
    qtype = {"qint8": q.QuantType.QInt8, "quint8": q.QuantType.QUInt8}
    try:
        with quiet_libraries():
            q.quantize_dynamic(
                str(fp32_path),
                str(out_path),
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                weight_type=qtype[config.weight_type],
                nodes_to_exclude=list(config.nodes_to_exclude) or None,
                op_types_to_quantize=list(config.op_types) if config.op_types else None,
            )
    except Exception as exc:  # noqa: BLE001
        raise EdgecnnError(f"dynamic quantization failed: {one_line(exc)}") from None
    return out_path


# ------------------------------------------------------------------------------ accuracy-aware search


def quantizable_nodes(model_path: Path) -> list[str]:
    """Names of the compute nodes (Conv, MatMul, Gemm) in graph order: the layers INT8 changes most."""
    import onnx

    model = onnx.load(str(model_path))
    return [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and n.name]


def channel_sqnr(float_values: Any, qdq_values: Any) -> float:
    """Mean over channels (axis 1) of the signal-to-quantization-noise ratio in dB.

    ORT's default compares whole tensors, so one large channel hides that the small ones were
    rounded to zero by a shared per-tensor scale, which is how outlier activations ruin INT8. Per
    channel, those zeroed channels score ~0 dB and the layer ranks as the worst, as it should.
    Channels that are zero in float (dead ReLUs) carry no signal and are skipped.
    """
    x = np.concatenate([np.asarray(v, dtype=np.float64) for v in float_values])
    y = np.concatenate([np.asarray(v, dtype=np.float64) for v in qdq_values])
    if x.ndim < 2:
        x, y = x.reshape(1, -1), y.reshape(1, -1)
    x = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    y = np.moveaxis(y, 1, 0).reshape(y.shape[1], -1)
    signal = np.linalg.norm(x, axis=1)
    noise = np.linalg.norm(x - y, axis=1)
    live = signal > 1e-12
    if not np.any(live):
        return float("inf")
    ratio = signal[live] / np.maximum(noise[live], signal[live] * 1e-5)  # cap at 100 dB
    return float(np.mean(20.0 * np.log10(ratio)))


def worst_quantized_nodes(
    float_path: Path,
    qdq_path: Path,
    images: np.ndarray,
    input_name: str,
    work_dir: Path,
    limit: int = 3,
) -> list[tuple[str, float]]:
    """Nodes whose outputs lose the most signal to quantization (lowest SQNR in dB), worst first.

    Uses ORT's qdq_loss_debug: both graphs are augmented to output every activation, run on the same
    real images, and each QDQ-wrapped activation is compared with its float twin. The producing node
    of a bad activation is the one to keep in float.
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as dbg

    aug_float = work_dir / "debug.float.onnx"
    aug_qdq = work_dir / "debug.qdq.onnx"
    with quiet_libraries():
        dbg.modify_model_output_intermediate_tensors(str(float_path), str(aug_float))
        dbg.modify_model_output_intermediate_tensors(str(qdq_path), str(aug_qdq))
        float_acts = dbg.collect_activations(
            str(aug_float),
            make_data_reader(images, input_name, 32),
            execution_providers=["CPUExecutionProvider"],
        )
        qdq_acts = dbg.collect_activations(
            str(aug_qdq),
            make_data_reader(images, input_name, 32),
            execution_providers=["CPUExecutionProvider"],
        )
        matched = dbg.create_activation_matching(qdq_acts, float_acts)
        errors = dbg.compute_activation_error(matched, err_func=channel_sqnr)
    nodes = onnx.load(str(float_path)).graph.node
    producer = {out: n for n in nodes for out in n.output}
    compute = set(quantizable_nodes(float_path))

    def compute_node_of(tensor: str) -> str | None:
        # QDQ sits after the activation (Conv -> Relu -> QDQ) or a pooling/reshape: walk back to
        # the Conv/MatMul/Gemm that produced the values, which is what can be kept in float.
        for _ in range(4):
            node = producer.get(tensor)
            if node is None:
                return None
            if node.name in compute:
                return node.name
            if not node.input:
                return None
            tensor = node.input[0]
        return None

    scored: dict[str, float] = {}
    for tensor, err in errors.items():
        name = compute_node_of(tensor)
        sqnr = err.get("xmodel_err")
        if name is None or sqnr is None:
            continue
        scored[name] = min(float(sqnr), scored.get(name, float("inf")))
    return sorted(scored.items(), key=lambda kv: kv[1])[:limit]


@dataclass(frozen=True)
class Attempt:
    """One INT8 setting tried by the accuracy-aware search, with what it measured."""

    index: int
    settings: str
    config: dict[str, Any]
    accuracy: float | None
    accuracy_drop_pp: float | None
    within_bound: bool
    note: str = ""


def candidate_configs(
    base: QuantizationConfig, compute_nodes: list[str]
) -> list[tuple[str, QuantizationConfig]]:
    """The search order: the user's setting, then per-channel flipped, other calibration methods,
    and first/last compute layers kept in float. Worst-layer exclusions are added by the caller once
    they have been measured."""
    seen: set[tuple[Any, ...]] = set()
    out: list[tuple[str, QuantizationConfig]] = []

    def add(label: str, cfg: QuantizationConfig) -> None:
        key = (cfg.per_channel, cfg.calibration_method, cfg.nodes_to_exclude)
        if key not in seen:
            seen.add(key)
            out.append((label, cfg))

    add("as configured", base)
    add("per-channel flipped", replace(base, per_channel=not base.per_channel))
    for method in CALIBRATION_METHODS:
        for pc in (base.per_channel, not base.per_channel):
            add(f"{method} calibration", replace(base, calibration_method=method, per_channel=pc))
    if compute_nodes:
        ends = tuple(dict.fromkeys((compute_nodes[0], compute_nodes[-1])))
        add("first/last layers in float", replace(base, nodes_to_exclude=base.nodes_to_exclude + ends))
    return out


def search_int8(
    *,
    fp32_path: Path,
    preprocessed: Path,
    calibration_images: np.ndarray,
    input_name: str,
    base: QuantizationConfig,
    max_drop_pp: float,
    evaluate: Callable[[Path], float],
    fp32_accuracy: float,
    work_dir: Path,
    on_attempt: Callable[[Attempt], None] | None = None,
    max_attempts: int | None = None,
) -> tuple[Path | None, QuantizationConfig | None, list[Attempt]]:
    """Try INT8 settings until the accuracy drop vs FP32 is within `max_drop_pp` percentage points.

    Returns (path of the first model within the bound or None, its config, every attempt).
    `evaluate(path) -> accuracy` runs the candidate on the real test set. `max_attempts` caps the
    number of quantized models tried (None: the whole search).
    """
    attempts: list[Attempt] = []
    compute = quantizable_nodes(preprocessed)
    queue = candidate_configs(base, compute)
    worst_added = False
    best: tuple[float, Path, QuantizationConfig] | None = None
    i = 0
    while i < len(queue) and (max_attempts is None or i < max_attempts):
        label, cfg = queue[i]
        i += 1
        out = work_dir / f"attempt{i}.int8.onnx"
        note = ""
        try:
            quantize_int8(fp32_path, out, calibration_images, input_name, cfg, preprocessed=preprocessed)
            acc: float | None = evaluate(out)
        except EdgecnnError as exc:
            acc, note = None, str(exc)
        drop = None if acc is None else (fp32_accuracy - acc) * 100.0
        ok = drop is not None and drop <= max_drop_pp
        attempt = Attempt(i, f"{label}: {cfg.describe()}", cfg.to_dict(), acc, drop, ok, note)
        attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)
        if ok:
            return out, cfg, attempts
        if acc is not None and (best is None or acc > best[0]):
            best = (acc, out, cfg)
        if (
            i == len(queue)
            and not worst_added
            and best is not None
            and (max_attempts is None or i < max_attempts)
        ):
            # Last resort: measure which layers lose the most signal in the best candidate so far and
            # keep the worst 1, 2, 3 of them in float (on top of that candidate's settings).
            worst_added = True
            try:
                worst = worst_quantized_nodes(
                    preprocessed, best[1], calibration_images[:128], input_name, work_dir
                )
            except Exception as exc:  # noqa: BLE001 - the debug tools are best effort
                worst = []
                attempts.append(Attempt(i + 1, "worst-layer analysis", {}, None, None, False, str(exc)[:200]))
            if not worst:
                attempts.append(
                    Attempt(
                        i + 1, "worst-layer analysis", {}, None, None, False, "no layer could be singled out"
                    )
                )
            names: tuple[str, ...] = ()
            for node, sqnr in worst:
                if node in best[2].nodes_to_exclude:
                    continue
                names = names + (node,)
                queue.append(
                    (
                        f"worst layers in float (+{node}, channel SQNR {sqnr:.1f} dB)",
                        replace(
                            best[2], nodes_to_exclude=tuple(dict.fromkeys(best[2].nodes_to_exclude + names))
                        ),
                    )
                )
    return None, None, attempts
