"""Keras model -> ONNX bundle (FP32 + quantized variants) with a parity gate and measured numbers.

`export(ExportConfig) -> ExportResult`. Steps: load the Keras file, convert with tf2onnx (Keras-3-safe
`from_function` route, keras' own ONNX export as a fallback), simplify (onnxslim) and apply
edgecnn.graph_opt's rewrites, write metadata, then gate the FP32 graph against Keras on real test
images. Variants are built by edgecnn.quantize and measured by edgecnn.variant_eval. The bundle is
built in a temporary directory and moved into place only when everything succeeded.

TensorFlow is imported lazily (edgecnn.tfcompat), only inside the conversion step.
"""

from __future__ import annotations

import json
import tempfile
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn import __version__
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import sha256_file
from edgecnn.core.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata, Normalization, write_metadata
from edgecnn.core.outputs import atomic_dir, atomic_write_json, refuse_overwrite, to_jsonable
from edgecnn.core.quiet import quiet_libraries
from edgecnn.core.text import one_line
from edgecnn.exporting.quantize import (
    DYNAMIC_WARNING,
    FP16_NOTE,
    VARIANT_FILES,
    Attempt,
    QuantizationConfig,
    check_calibration_images,
)

QUANTIZE_CHOICES = ("int8", "fp16", "dynamic", "all", "auto")
# tf2onnx 1.17 writes opsets up to 18; 13 is the first with per-axis QuantizeLinear (per-channel INT8).
MIN_OPSET, MAX_OPSET = 13, 18
DEFAULT_OPSET = 17
# `--quantize auto` without --max-accuracy-drop: the bound it uses (recorded in export.json).
DEFAULT_AUTO_MAX_DROP_PP = 0.5
PARITY_MAX_ABS_DIFF = 1e-4
BATCH_DIM = "batch"
EXPORT_JSON = "export.json"
ROUTE_TF2ONNX = "tf2onnx.from_function"
ROUTE_KERAS = "keras.export(onnx)"


@dataclass(frozen=True)
class ExportConfig:
    model_path: Path
    output_dir: Path
    quantize: tuple[str, ...] = ()
    data_dir: Path | None = None
    dataset: str | None = None  # None: from train.json, else mnist (recorded as an assumption)
    labels: tuple[str, ...] | None = None
    opset: int = DEFAULT_OPSET
    nchw: bool = False
    simplify: bool = True
    graph_rewrites: bool = True  # edgecnn.graph_opt, when installed
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    max_accuracy_drop: float | None = None  # percentage points vs FP32
    search_limit: int | None = None  # most INT8 settings the accuracy-aware search tries (None: all)
    parity_samples: int = 1024  # test images checked at the larger batch
    parity_batch: int = 64
    parity_batch1_samples: int = 16
    eval_limit: int | None = None  # None: the whole test set
    latency: bool = True
    latency_rounds: int = 30
    latency_batches: tuple[int, ...] = (1, 64)
    force: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_path", Path(self.model_path))
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))
        quantize = tuple(q.strip().lower() for q in self.quantize if q.strip())
        unknown = [q for q in quantize if q not in QUANTIZE_CHOICES]
        if unknown:
            raise EdgecnnError(
                f"unknown --quantize value {unknown[0]!r}; choose from {', '.join(QUANTIZE_CHOICES)}"
            )
        if "auto" in quantize and len(set(quantize)) > 1:
            raise EdgecnnError("--quantize auto picks the variant itself; do not combine it with others")
        object.__setattr__(self, "quantize", quantize)
        if not isinstance(self.opset, int) or not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise EdgecnnError(
                f"unsupported opset {self.opset}; tf2onnx and ONNX Runtime here support "
                f"{MIN_OPSET}-{MAX_OPSET} (default {DEFAULT_OPSET})"
            )
        if self.max_accuracy_drop is not None:
            if not 0.0 <= self.max_accuracy_drop <= 100.0:
                raise EdgecnnError("--max-accuracy-drop is in percentage points, between 0 and 100")
            if not quantize:
                raise EdgecnnError("--max-accuracy-drop needs --quantize (int8, all or auto)")
        for name in ("parity_samples", "parity_batch", "parity_batch1_samples", "latency_rounds"):
            if getattr(self, name) < 1:
                raise EdgecnnError(f"{name.replace('_', ' ')} must be >= 1")
        if self.search_limit is not None and self.search_limit < 1:
            raise EdgecnnError("--search-limit must be >= 1")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise EdgecnnError("eval limit must be >= 1")
        if any(b < 1 for b in self.latency_batches):
            raise EdgecnnError("latency batch sizes must be >= 1")
        if self.labels is not None and len(self.labels) == 0:
            raise EdgecnnError("--labels must name at least one class")

    @property
    def variants(self) -> tuple[str, ...]:
        """Variant names to build, in report order."""
        if "auto" in self.quantize or "all" in self.quantize:
            return ("int8", "fp16", "dynamic")
        return tuple(v for v in ("int8", "fp16", "dynamic") if v in self.quantize)

    @property
    def effective_max_drop(self) -> float | None:
        if self.max_accuracy_drop is not None:
            return self.max_accuracy_drop
        return DEFAULT_AUTO_MAX_DROP_PP if "auto" in self.quantize else None


@dataclass(frozen=True)
class Parity:
    batch_size: int
    n: int
    max_abs_diff: float
    top1_agreement: float
    passed: bool


@dataclass
class VariantReport:
    name: str
    path: Path | None
    accuracy: float
    accuracy_drop_pp: float
    top1_agreement: float  # with FP32 ONNX
    max_abs_diff: float  # FP32: vs Keras (parity gate); variants: vs FP32 ONNX, on the test set
    size_bytes: int
    size_ratio: float  # vs FP32
    latency_ms: dict[int, float] = field(default_factory=dict)  # batch -> median
    fp32_latency_ms: dict[int, float] = field(default_factory=dict)  # measured in the same rounds
    speedup: dict[int, float] = field(default_factory=dict)  # FP32 median / variant median
    slower_than_fp32: bool = False
    within_bound: bool | None = None
    kept: bool = True  # False: measured but not written (outside the accuracy bound)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    output_dir: Path
    model_path: Path  # the FP32 .onnx in the bundle
    source_model: Path
    route: str
    opset: int
    layout: str
    node_counts: dict[str, int]
    graph_rewrites: list[str]
    parity: list[Parity]
    variants: dict[str, VariantReport]  # "fp32" first
    attempts: list[Attempt]
    selected: str | None  # --quantize auto's pick
    max_accuracy_drop: float | None
    bound_met: bool
    warnings: list[str]
    assumptions: list[str]
    dataset: str
    class_labels: tuple[str, ...]
    config: dict[str, Any]
    timings: dict[str, float]
    environment: dict[str, Any]
    json_path: Path

    @property
    def failure(self) -> str | None:
        """Why the command must exit non-zero although the bundle (with FP32) was written."""
        if self.bound_met:
            return None
        out = [v for v in self.variants.values() if v.within_bound is False]
        names = ", ".join(f"{v.name} (drop {v.accuracy_drop_pp:.2f} pp)" for v in out) or "int8"
        tried = ""
        if any(v.name == "int8" for v in out) or "int8" not in self.variants:
            tried = f"; {len(self.attempts)} INT8 setting(s) tried, none within the bound"
        return (
            f"over --max-accuracy-drop {self.max_accuracy_drop:g} pp: {names}{tried}; "
            f"those files were not written, the FP32 model was kept (details: {self.json_path})"
        )

    def to_document(self) -> dict[str, Any]:
        doc = to_jsonable(self)
        doc["failure"] = self.failure
        return doc


# ------------------------------------------------------------------------------------------ helpers


class _Steps:
    """One rich progress bar over the export steps (stderr), or nothing when progress is off."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._progress: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]export[/bold] {task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("", total=total)

    def __enter__(self) -> _Steps:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def step(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=description)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)


def check_keras_file(path: Path) -> str:
    """Refuse what is not a Keras model file before TensorFlow is even imported; returns the format."""
    if not path.exists():
        raise EdgecnnError(f"model file {path} does not exist")
    if path.is_dir():
        raise EdgecnnError(f"{path} is a directory; pass the .keras file (e.g. RUN/model.keras)")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF"):
        return "h5"
    if not head.startswith(b"PK"):
        kind = "an ONNX model" if path.suffix == ".onnx" else "not a Keras model"
        raise EdgecnnError(f"{path} is {kind}; export takes a Keras 3 .keras file (or a legacy .h5)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "config.json" not in names:
                raise EdgecnnError(f"{path} is a zip file but not a Keras model (no config.json inside)")
            bad = zf.testzip()
    except zipfile.BadZipFile:
        raise EdgecnnError(
            f"{path} is corrupt (truncated or damaged zip archive); re-save the model"
        ) from None
    if bad is not None:
        raise EdgecnnError(f"{path} is corrupt ({bad} fails its checksum); re-save the model")
    return "keras"


def read_train_json(model_path: Path) -> dict[str, Any] | None:
    path = model_path.parent / "train.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EdgecnnError(f"{path} is not readable JSON ({one_line(exc, 120)}); fix or remove it") from None
    if not isinstance(doc, dict):
        raise EdgecnnError(f"{path} is not a train.json document (expected a JSON object)")
    return doc


def load_keras_model(path: Path) -> Any:
    from edgecnn.core.tfcompat import import_keras

    keras = import_keras()
    try:
        with quiet_libraries():
            return keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # noqa: BLE001 - keras raises ValueError/TypeError/OSError/... for bad files
        raise EdgecnnError(f"cannot load Keras model {path}: {one_line(exc, 240)}") from None


def model_io(model: Any) -> tuple[tuple[int, int, int], int]:
    """(H, W, C) of the single image input and the number of classes of the single output."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise EdgecnnError(
            f"export supports models with one image input and one output; this one has "
            f"{len(inputs)} input(s) and {len(outputs)} output(s)"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise EdgecnnError(
            f"model input must be (batch, height, width, channels) with fixed sizes, not {shape}"
        )
    out = tuple(outputs[0].shape)
    if len(out) != 2 or out[1] is None:
        raise EdgecnnError(f"model output must be (batch, classes), not {out}")
    return (int(shape[1]), int(shape[2]), int(shape[3])), int(out[1])


def _keras_call(model: Any, input_shape: tuple[int, int, int]) -> tuple[Any, Any]:
    from edgecnn.core.tfcompat import import_tensorflow

    tf = import_tensorflow()
    spec = (tf.TensorSpec((None, *input_shape), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(x: Any) -> dict[str, Any]:
        return {OUTPUT_NAME: model(x, training=False)}

    return serve, spec


def _convert_tf2onnx(model: Any, input_shape: tuple[int, int, int], opset: int, nchw: bool) -> Any:
    import tf2onnx

    serve, spec = _keras_call(model, input_shape)
    with quiet_libraries():
        onnx_model, _ = tf2onnx.convert.from_function(
            serve, input_signature=spec, opset=opset, inputs_as_nchw=[INPUT_NAME] if nchw else None
        )
    bad = unsupported_ops(onnx_model)
    if bad:
        raise EdgecnnError(f"tf2onnx has no ONNX equivalent for TensorFlow op(s) {', '.join(bad[:3])}")
    return onnx_model


def unsupported_ops(model: Any) -> list[str]:
    """Ops tf2onnx could not map to ONNX: it leaves them in the graph as TensorFlow ops and only logs."""
    import onnx

    bad = []
    for node in model.graph.node:
        domain = node.domain or ""
        if domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type):
            bad.append(f"{node.op_type} (in {node.name or 'an unnamed node'})")
        elif domain not in ("", "ai.onnx", "ai.onnx.ml", "com.microsoft"):
            bad.append(f"{domain}.{node.op_type} (in {node.name or 'an unnamed node'})")
    return bad


def _convert_keras_export(model: Any, input_shape: tuple[int, int, int], opset: int, nchw: bool) -> Any:
    import onnx

    if nchw:
        raise EdgecnnError("keras' ONNX export cannot make an NCHW input")
    _, spec = _keras_call(model, input_shape)
    with tempfile.TemporaryDirectory(prefix="edgecnn-kexport-") as tmp, quiet_libraries():
        out = Path(tmp) / "model.onnx"
        model.export(str(out), format="onnx", verbose=False, opset_version=opset, input_signature=list(spec))
        onnx_model = onnx.load(str(out))
    bad = unsupported_ops(onnx_model)
    if bad:
        raise EdgecnnError(f"unsupported op(s) {', '.join(bad[:3])}")
    _rename_io(onnx_model)
    return onnx_model


def _rename_io(model: Any) -> None:
    """Give the graph's single input/output the contract names (keras' exporter uses its own)."""
    graph = model.graph
    renames = {graph.input[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    for old, new in list(renames.items()):
        if old == new:
            del renames[old]
    if not renames:
        return
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        for i, name in enumerate(node.output):
            if name in renames:
                node.output[i] = renames[name]
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name in renames:
            vi.name = renames[vi.name]


def name_batch_dim(model: Any) -> None:
    """Name the dynamic batch dimension `batch` everywhere (tf2onnx writes e.g. `unk__48`)."""
    graph = model.graph
    old = graph.input[0].type.tensor_type.shape.dim[0]
    old_param = old.dim_param if old.HasField("dim_param") else None
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            continue
        first = dims[0]
        if vi in graph.input or vi in graph.output or (old_param and first.dim_param == old_param):
            if not first.HasField("dim_value") or first.dim_value in (0, -1):
                first.dim_param = BATCH_DIM


def convert(
    model: Any, input_shape: tuple[int, int, int], opset: int, nchw: bool
) -> tuple[Any, str, list[str]]:
    """Keras model -> ONNX ModelProto. Returns (model, route that ran, notes on routes that failed)."""
    notes: list[str] = []
    try:
        return _convert_tf2onnx(model, input_shape, opset, nchw), ROUTE_TF2ONNX, notes
    except Exception as exc:  # noqa: BLE001 - converter errors are many types; reported in one line
        first = one_line(exc, 240)
        notes.append(f"{ROUTE_TF2ONNX} failed: {first}")
    try:
        return _convert_keras_export(model, input_shape, opset, nchw), ROUTE_KERAS, notes
    except Exception as exc:  # noqa: BLE001
        notes.append(f"{ROUTE_KERAS} failed: {one_line(exc, 120)}")
    raise EdgecnnError(f"the converter cannot handle this model: {first}")


def tidy_names(model: Any) -> int:
    """Shorten tf2onnx's TensorFlow-style names (`model_1/conv2d_1/convolution/ReadVariableOp:0`).

    Weights become `<layer>.weight` / `<layer>.bias`, other names lose the model prefix and `:0`.
    Names are stored once per use and again for every Q/DQ node quantization adds, so on a small CNN
    they are ~10% of an INT8 file; shorter names also read better in Netron and in the worst-layer
    report. Graph input/output names are kept. Returns how many names changed.
    """
    graph = model.graph
    keep = {vi.name for vi in graph.input} | {vi.name for vi in graph.output}
    node_names = [n.name for n in graph.node if n.name]
    firsts = {name.split("/", 1)[0] for name in node_names}
    prefix = next(iter(firsts)) + "/" if len(firsts) == 1 and all("/" in n for n in node_names) else ""

    def short(name: str) -> str:
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        return name[:-2] if name.endswith(":0") else name

    renames: dict[str, str] = {}
    used = set(keep)

    def claim(old: str, new: str) -> None:
        if old in keep or old in renames:
            return
        candidate, i = new, 1
        while candidate in used:
            i += 1
            candidate = f"{new}_{i}"
        used.add(candidate)
        renames[old] = candidate

    inits = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            layer = short(node.name).split("/", 1)[0] if node.name else ""
            for idx, role in ((1, "weight"), (2, "bias")):
                if layer and len(node.input) > idx and node.input[idx] in inits:
                    claim(node.input[idx], f"{layer}.{role}")
    tensors = [t.name for t in graph.initializer]
    tensors += [name for node in graph.node for name in list(node.input) + list(node.output) if name]
    for name in tensors:
        claim(name, short(name))
    renames = {k: v for k, v in renames.items() if k != v}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
        if node.name:
            node.name = short(node.name)
    for t in graph.initializer:
        t.name = renames.get(t.name, t.name)
    for vi in graph.value_info:
        vi.name = renames.get(vi.name, vi.name)
    return len(renames)


def simplify(model: Any) -> tuple[Any, str | None]:
    """onnxslim's constant folding / dead-node removal; (model, None) or (unchanged, why it failed)."""
    try:
        import onnxslim
    except ImportError:
        return model, "onnxslim is not installed; graph not simplified"
    try:
        with quiet_libraries():
            slimmed = onnxslim.slim(model)
    except Exception as exc:  # noqa: BLE001 - simplification is optional; the parity gate still runs
        return model, f"onnxslim failed ({one_line(exc, 120)}); graph not simplified"
    if slimmed is None:
        return model, "onnxslim returned nothing; graph not simplified"
    return slimmed, None


def apply_graph_rewrites(model: Any, nchw: bool) -> tuple[Any, list[str]]:
    from edgecnn.exporting.graph_rewrites import optimize_graph

    return optimize_graph(model, nchw=nchw)


def graph_macs(model: Any) -> int | None:
    """Multiply-accumulates per image of Conv/MatMul/Gemm nodes, from shape inference (no TF)."""
    from onnx import numpy_helper, shape_inference

    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001
        return None
    shapes: dict[str, list[int]] = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else 1 for d in dims]
    inits = {t.name: list(numpy_helper.to_array(t).shape) for t in inferred.graph.initializer}
    total = 0
    for node in inferred.graph.node:
        out = shapes.get(node.output[0])
        if node.op_type == "Conv":
            w = inits.get(node.input[1])
            if not out or not w:
                return None
            total += int(np.prod(out[1:])) * int(np.prod(w[1:]))
        elif node.op_type in ("MatMul", "Gemm"):
            w = inits.get(node.input[1])
            if not out or not w or len(w) != 2:
                return None
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            k = w[1] if trans_b else w[0]
            total += int(np.prod(out[1:])) * int(k)
    return total or None


# --------------------------------------------------------------------------------------- the export


@dataclass(frozen=True)
class _Source:
    dataset: str
    labels: tuple[str, ...]
    normalization: Normalization | None  # None: the dataset's
    model_name: str | None
    macs: int | None
    image_size: tuple[int, int] | None
    channels: int | None


def _resolve_source(
    config: ExportConfig, train: dict[str, Any] | None, input_shape: tuple[int, int, int], num_classes: int
) -> tuple[_Source, list[str], list[str]]:
    assumptions: list[str] = []
    warns: list[str] = []
    ds_doc = (train or {}).get("dataset") or {}
    model_doc = (train or {}).get("model") or {}
    trained_on = ds_doc.get("name")
    if config.dataset:
        dataset = config.dataset
        if trained_on and trained_on != dataset:
            warns.append(f"train.json says the model was trained on {trained_on}; using --dataset {dataset}")
    elif trained_on:
        dataset = str(trained_on)
    else:
        dataset = "mnist"
        assumptions.append("no train.json beside the model and no --dataset: assumed dataset mnist")
    labels: tuple[str, ...] = ()
    if config.labels is not None:
        labels = tuple(config.labels)
    elif ds_doc.get("class_labels") and (not config.dataset or config.dataset == trained_on):
        labels = tuple(str(x) for x in ds_doc["class_labels"])
    normalization = None
    if ds_doc.get("normalization") and (not config.dataset or config.dataset == trained_on):
        try:
            normalization = Normalization.from_dict(ds_doc["normalization"])
        except (KeyError, TypeError, ValueError):
            warns.append("train.json normalization is malformed; using the dataset's")
    if labels and len(labels) != num_classes:
        raise EdgecnnError(f"{len(labels)} class labels given but the model has {num_classes} outputs")
    macs = model_doc.get("macs")
    shape_doc = ds_doc.get("input_shape")
    image_size = channels = None
    if shape_doc and list(shape_doc) == list(input_shape):
        # The run trained on the dataset at this size: load it the same way (folder datasets need it).
        image_size, channels = (input_shape[0], input_shape[1]), input_shape[2]
    return (
        _Source(
            dataset=dataset,
            labels=labels,
            normalization=normalization,
            model_name=model_doc.get("name"),
            macs=int(macs) if isinstance(macs, (int, float)) else None,
            image_size=image_size,
            channels=channels,
        ),
        assumptions,
        warns,
    )


def _load_data(config: ExportConfig, source: _Source) -> Any:
    from edgecnn.data import load_dataset

    kwargs: dict[str, Any] = {}
    if source.image_size is not None and source.dataset.startswith("folder:"):
        kwargs = {"image_size": source.image_size, "channels": source.channels}
    return load_dataset(source.dataset, config.data_dir, **kwargs)


def _keras_predict(serve: Any, x: np.ndarray, batch: int) -> np.ndarray:
    outs = []
    for start in range(0, len(x), batch):
        outs.append(np.asarray(serve(x[start : start + batch])[OUTPUT_NAME], dtype=np.float32))
    return np.concatenate(outs)


def parity_gate(
    serve: Any, session: Any, x_nhwc: np.ndarray, x_graph: np.ndarray, config: ExportConfig
) -> list[Parity]:
    """Keras vs ONNX Runtime on the same real images, at batch 1 and at `parity_batch`."""
    from edgecnn.runtime.inference import compare_probabilities, predict_probabilities

    results = []
    n1 = min(config.parity_batch1_samples, len(x_nhwc))
    nb = min(config.parity_samples, len(x_nhwc))
    for batch, n in ((1, n1), (config.parity_batch, nb)):
        ref = _keras_predict(serve, x_nhwc[:n], batch)
        got = predict_probabilities(session, x_graph[:n], batch)
        agree = compare_probabilities(ref, got)
        passed = agree.max_abs_diff <= PARITY_MAX_ABS_DIFF and agree.top1_agreement == 1.0
        results.append(Parity(batch, n, agree.max_abs_diff, agree.top1_agreement, passed))
    failed = [p for p in results if not p.passed]
    if failed:
        detail = "; ".join(
            f"batch {p.batch_size} on {p.n} test images: max abs diff {p.max_abs_diff:.3g} "
            f"(limit {PARITY_MAX_ABS_DIFF:g}), top-1 agreement {p.top1_agreement * 100:.2f}%"
            for p in failed
        )
        raise EdgecnnError(f"parity gate failed, ONNX does not match Keras: {detail}; nothing was written")
    return results


def _save(model: Any, path: Path) -> int:
    import onnx

    onnx.save(model, str(path))
    return path.stat().st_size


def export(config: ExportConfig) -> ExportResult:
    """Run the whole export; see the module docstring. Raises EdgecnnError with one line on bad input."""
    import onnx

    from edgecnn.core.environment import environment_info
    from edgecnn.exporting.variant_eval import interleaved_latency
    from edgecnn.runtime.inference import accuracy, compare_probabilities, predict_probabilities
    from edgecnn.runtime.preprocess import prepare_batch
    from edgecnn.runtime.sessions import open_cpu_session

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    fmt = check_keras_file(config.model_path)
    refuse_overwrite(config.output_dir, config.force, "bundle")
    train_doc = read_train_json(config.model_path)
    n_steps = 5 + len(config.variants) + (1 if config.latency else 0)

    with _Steps(config.progress, n_steps) as steps:
        steps.step("loading the Keras model")
        keras_model = load_keras_model(config.model_path)
        input_shape, num_classes = model_io(keras_model)
        source, assumptions, warns = _resolve_source(config, train_doc, input_shape, num_classes)
        if "auto" in config.quantize and config.max_accuracy_drop is None:
            assumptions.append(
                f"--quantize auto without --max-accuracy-drop: bound {DEFAULT_AUTO_MAX_DROP_PP:g} pp"
            )
        if fmt == "h5":
            warns.append("legacy HDF5 model file; Keras 3 .keras files are preferred")
        steps.done()

        steps.step(f"loading {source.dataset}")
        data = _load_data(config, source)
        if tuple(data.input_shape) != input_shape:
            raise EdgecnnError(
                f"dataset {data.name} images are {'x'.join(map(str, data.input_shape))} but the model "
                f"input is {'x'.join(map(str, input_shape))} (HxWxC); pass the dataset the model was "
                "trained on (--dataset)"
            )
        labels = source.labels or tuple(data.class_labels)
        if len(labels) != num_classes:
            raise EdgecnnError(
                f"dataset {data.name} has {len(labels)} classes but the model has {num_classes} outputs; "
                "pass --dataset or --labels"
            )
        if source.labels == () and train_doc is None:
            assumptions.append(f"class labels taken from dataset {data.name}")
        normalization = source.normalization or data.normalization
        if source.normalization is None:
            assumptions.append(f"normalization taken from dataset {data.name}: {normalization.to_dict()}")
        timings["load_s"] = time.perf_counter() - t_start
        steps.done()

        steps.step(f"converting (opset {config.opset})")
        t0 = time.perf_counter()
        onnx_model, route, route_notes = convert(keras_model, input_shape, config.opset, config.nchw)
        warns.extend(route_notes)
        name_batch_dim(onnx_model)
        node_counts = {"converted": len(onnx_model.graph.node)}
        if config.simplify:
            onnx_model, why = simplify(onnx_model)
            if why:
                warns.append(why)
        node_counts["simplified"] = len(onnx_model.graph.node)
        rewrites: list[str] = []
        if config.graph_rewrites:
            onnx_model, rewrites = apply_graph_rewrites(onnx_model, config.nchw)
        node_counts["final"] = len(onnx_model.graph.node)
        name_batch_dim(onnx_model)
        tidy_names(onnx_model)
        try:
            onnx.checker.check_model(onnx_model)
        except Exception as exc:  # noqa: BLE001
            raise EdgecnnError(f"the converted graph is not valid ONNX: {one_line(exc)}") from None
        timings["convert_s"] = time.perf_counter() - t0
        steps.done()

        layout = "NCHW" if config.nchw else "NHWC"
        base_meta = ModelMetadata(
            input_shape=input_shape,
            layout=layout,
            class_labels=labels,
            normalization=normalization,
            dataset=data.name,
            model_name=source.model_name or getattr(keras_model, "name", None),
            variant="fp32",
            source_sha256=sha256_file(config.model_path),
            export_route=route,
            macs_per_image=source.macs or graph_macs(onnx_model),
            edgecnn_version=__version__,
        )

        x_test = np.asarray(data.x_test)
        y_test = np.asarray(data.y_test)
        if config.eval_limit is not None:
            x_test, y_test = x_test[: config.eval_limit], y_test[: config.eval_limit]
        x_test_graph = prepare_batch(x_test, base_meta)
        x_test_nhwc = normalization.apply(x_test).astype(np.float32)

        with (
            atomic_dir(config.output_dir, force=config.force) as bundle,
            tempfile.TemporaryDirectory(prefix="edgecnn-export-") as work_s,
        ):
            work = Path(work_s)
            fp32_path = bundle / VARIANT_FILES["fp32"]
            write_metadata(onnx_model, base_meta)
            fp32_size = _save(onnx_model, fp32_path)

            steps.step("parity gate (Keras vs ONNX Runtime)")
            t0 = time.perf_counter()
            fp32_session, provider = open_cpu_session(fp32_path)
            serve, _ = _keras_call(keras_model, input_shape)
            parity = parity_gate(serve, fp32_session, x_test_nhwc, x_test_graph, config)
            timings["parity_s"] = time.perf_counter() - t0
            steps.done()

            steps.step(f"evaluating FP32 on {len(x_test)} test images")
            t0 = time.perf_counter()
            fp32_probs = predict_probabilities(fp32_session, x_test_graph)
            fp32_acc = accuracy(fp32_probs, y_test)
            big = max(parity, key=lambda p: p.n)
            reports: dict[str, VariantReport] = {
                "fp32": VariantReport(
                    name="fp32",
                    path=fp32_path,
                    accuracy=fp32_acc,
                    accuracy_drop_pp=0.0,
                    top1_agreement=1.0,
                    max_abs_diff=max(p.max_abs_diff for p in parity),
                    size_bytes=fp32_size,
                    size_ratio=1.0,
                    within_bound=True if config.effective_max_drop is not None else None,
                    settings={"parity_images": big.n},
                )
            }
            timings["eval_fp32_s"] = time.perf_counter() - t0
            steps.done()

            sessions: dict[str, Any] = {"fp32": fp32_session}
            attempts: list[Attempt] = []
            max_drop = config.effective_max_drop

            def measure(name: str, path: Path, settings: dict[str, Any], notes: list[str]) -> VariantReport:
                session, _ = open_cpu_session(path)
                probs = predict_probabilities(session, x_test_graph)
                acc = accuracy(probs, y_test)
                agree = compare_probabilities(fp32_probs, probs)
                drop = (fp32_acc - acc) * 100.0
                report = VariantReport(
                    name=name,
                    path=path,
                    accuracy=acc,
                    accuracy_drop_pp=drop,
                    top1_agreement=agree.top1_agreement,
                    max_abs_diff=agree.max_abs_diff,
                    size_bytes=path.stat().st_size,
                    size_ratio=path.stat().st_size / fp32_size,
                    within_bound=None if max_drop is None else drop <= max_drop,
                    settings=settings,
                    notes=notes,
                )
                sessions[name] = session
                return report

            def finish_variant(
                name: str, model_file: Path, settings: dict[str, Any], notes: list[str]
            ) -> None:
                """Stamp metadata on a variant built in the work dir, save it into the bundle, measure it."""
                model = onnx.load(str(model_file))
                write_metadata(model, replace(base_meta, variant=name))
                target = bundle / VARIANT_FILES[name]
                _save(model, target)
                report = measure(name, target, settings, notes)
                if report.within_bound is False:
                    # Outside the bound: measured and reported, but not shipped in the bundle.
                    report.kept = False
                    report.path = None
                    sessions.pop(name, None)
                    target.unlink()
                reports[name] = report

            from edgecnn.exporting import quantize as qz

            if "int8" in config.variants:
                steps.step("INT8 static quantization (calibrating)")
                t0 = time.perf_counter()
                qcfg = config.quantization
                # Only the calibration sample is converted to float (60k MNIST images would be 190 MB).
                x_cal = prepare_batch(
                    qz.select_calibration_images(
                        np.asarray(data.x_train), qcfg.calibration_samples, qcfg.seed
                    ),
                    base_meta,
                )
                check_calibration_images(x_cal, base_meta.graph_input_shape)
                # graph_opt's INT8 layout (exact in float): the one-input-channel stem stays float as
                # Conv -> MaxPool -> Relu so ORT starts int8 at the second conv in NHWC, and the
                # flatten is NHWC so no transpose runs before the Dense layer.
                int8_src = fp32_path
                if config.graph_rewrites:
                    from edgecnn.exporting.graph_rewrites import prepare_for_int8

                    prepared, int8_rewrites, keep_float = prepare_for_int8(onnx.load(str(fp32_path)))
                    if int8_rewrites:
                        candidate = work / "model.int8src.onnx"
                        _save(prepared, candidate)
                        # The rewrites are exact in float; prove it on real images like the FP32 gate
                        # does, and quantize the plain FP32 graph rather than a graph that drifted.
                        n = min(config.parity_samples, len(x_test_graph))
                        src_session, _ = open_cpu_session(candidate)
                        check = compare_probabilities(
                            fp32_probs[:n], predict_probabilities(src_session, x_test_graph[:n])
                        )
                        del src_session
                        if check.max_abs_diff <= PARITY_MAX_ABS_DIFF and check.top1_agreement == 1.0:
                            int8_src = candidate
                            qcfg = replace(
                                qcfg,
                                nodes_to_exclude=tuple(dict.fromkeys((*qcfg.nodes_to_exclude, *keep_float))),
                            )
                            rewrites = rewrites + [f"int8:{r}" for r in int8_rewrites]
                        else:
                            warns.append(
                                f"INT8 graph rewrites ({', '.join(int8_rewrites)}) changed the float outputs "
                                f"(max abs diff {check.max_abs_diff:.3g}); quantized the plain FP32 graph"
                            )
                pre = qz.preprocess_for_quantization(int8_src, work / "model.pre.onnx")
                if pre == int8_src:
                    warns.append("onnxruntime quant_pre_process failed; INT8 quantized without it")
                if max_drop is not None:

                    def evaluate(path: Path) -> float:
                        session, _ = open_cpu_session(path)
                        return accuracy(predict_probabilities(session, x_test_graph), y_test)

                    def on_attempt(a: Attempt) -> None:
                        steps.step(f"INT8 search: attempt {a.index} ({a.settings[:60]})")

                    found, found_cfg, attempts = qz.search_int8(
                        fp32_path=int8_src,
                        preprocessed=pre,
                        calibration_images=x_cal,
                        input_name=INPUT_NAME,
                        base=qcfg,
                        max_drop_pp=max_drop,
                        evaluate=evaluate,
                        fp32_accuracy=fp32_acc,
                        work_dir=work,
                        on_attempt=on_attempt,
                        max_attempts=config.search_limit,
                    )
                    if found is None:
                        # Report the best attempt's numbers as the INT8 row, marked as not kept.
                        scored = [a for a in attempts if a.accuracy is not None]
                        if scored:
                            best = max(scored, key=lambda a: a.accuracy or 0.0)
                            best_path = work / f"attempt{best.index}.int8.onnx"
                            finish_variant(
                                "int8", best_path, best.config, [f"best of {len(attempts)} attempts"]
                            )
                    else:
                        assert found_cfg is not None
                        finish_variant(
                            "int8",
                            found,
                            found_cfg.to_dict(),
                            [f"found on attempt {len(attempts)}: {found_cfg.describe()}"],
                        )
                else:
                    out = qz.quantize_int8(
                        int8_src, work / "model.int8.onnx", x_cal, INPUT_NAME, qcfg, preprocessed=pre
                    )
                    finish_variant("int8", out, qcfg.to_dict(), [qcfg.describe()])
                timings["int8_s"] = time.perf_counter() - t0
                steps.done()

            if "fp16" in config.variants:
                steps.step("FP16 conversion")
                t0 = time.perf_counter()
                fp16 = qz.convert_fp16(onnx.load(str(fp32_path)))
                _save(fp16, work / "model.fp16.onnx")
                finish_variant("fp16", work / "model.fp16.onnx", {"keep_io_types": True}, [FP16_NOTE])
                timings["fp16_s"] = time.perf_counter() - t0
                steps.done()

            if "dynamic" in config.variants:
                steps.step("dynamic INT8 quantization")
                t0 = time.perf_counter()
                warns.append(DYNAMIC_WARNING)
                out = qz.quantize_dynamic_int8(fp32_path, work / "model.dynamic.onnx", config.quantization)
                settings = {
                    "per_channel": config.quantization.per_channel,
                    "weight_type": config.quantization.weight_type,
                }
                finish_variant("dynamic", out, settings, [DYNAMIC_WARNING.split(",")[0]])
                timings["dynamic_s"] = time.perf_counter() - t0
                steps.done()

            if config.latency:
                steps.step(f"latency side by side at batch {', '.join(map(str, config.latency_batches))}")
                t0 = time.perf_counter()
                lat = interleaved_latency(
                    sessions, x_test_graph[:256], config.latency_batches, rounds=config.latency_rounds
                )
                for name, per_batch in lat.items():
                    r = reports[name]
                    r.latency_ms = {b: s.median_ms for b, s in per_batch.items()}
                    r.fp32_latency_ms = {b: s.median_ms for b, s in lat["fp32"].items()}
                    r.speedup = {b: r.fp32_latency_ms[b] / r.latency_ms[b] for b in r.latency_ms}
                    r.slower_than_fp32 = name != "fp32" and any(v < 1.0 for v in r.speedup.values())
                timings["latency_s"] = time.perf_counter() - t0
                steps.done()

            selected = None
            if "auto" in config.quantize:
                ok = [r for r in reports.values() if r.kept and r.within_bound is not False]
                if config.latency:
                    b = min(config.latency_batches)
                    selected = min(ok, key=lambda r: r.latency_ms.get(b, float("inf"))).name
                else:
                    selected = min(ok, key=lambda r: r.size_bytes).name

            bound_met = all(r.within_bound is not False for r in reports.values())
            if "int8" in config.variants and "int8" not in reports:
                bound_met = False
            timings["total_s"] = time.perf_counter() - t_start
            result = ExportResult(
                output_dir=config.output_dir,
                model_path=config.output_dir / VARIANT_FILES["fp32"],
                source_model=config.model_path,
                route=route,
                opset=config.opset,
                layout=layout,
                node_counts=node_counts,
                graph_rewrites=rewrites,
                parity=parity,
                variants=reports,
                attempts=attempts,
                selected=selected,
                max_accuracy_drop=max_drop,
                bound_met=bound_met,
                warnings=warns,
                assumptions=assumptions,
                dataset=data.name,
                class_labels=labels,
                config={**to_jsonable(config), "quantization": config.quantization.to_dict()},
                timings=timings,
                environment={**environment_info(), "execution_provider": provider},
                json_path=config.output_dir / EXPORT_JSON,
            )
            # Paths in the document point into the final bundle, not the temporary directory.
            for r in reports.values():
                if r.path is not None:
                    r.path = config.output_dir / r.path.name
            sessions.clear()
            atomic_write_json(bundle / EXPORT_JSON, result.to_document())
    return result


# ------------------------------------------------------------------------------------------ reports


def result_table(result: ExportResult) -> Any:
    """The side-by-side table printed at the end of an export (rich). Latency cells show the
    variant's median and its speed relative to FP32 measured in the same rounds (x1.25 = faster)."""
    from rich import box
    from rich.table import Table

    batches = sorted({b for r in result.variants.values() for b in r.latency_ms})
    table = Table(title=f"export {result.output_dir}", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("variant", no_wrap=True)
    table.add_column("acc %", justify="right", no_wrap=True)
    table.add_column("Δ pp", justify="right", no_wrap=True)
    table.add_column("agree %", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    for b in batches:
        table.add_column(f"b{b} ms", justify="right", no_wrap=True)
    for r in result.variants.values():
        row = [
            r.name + ("" if r.kept else " ✗") + (" ★" if result.selected == r.name else ""),
            f"{r.accuracy * 100:.2f}",
            "-" if r.name == "fp32" else f"{-r.accuracy_drop_pp:+.2f}",
            f"{r.top1_agreement * 100:.2f}",
            f"{r.size_bytes / 1024:.0f}K {r.size_ratio * 100:.0f}%",
        ]
        for b in batches:
            ms = r.latency_ms.get(b)
            if ms is None:
                row.append("-")
            elif r.name == "fp32":
                row.append(f"{ms:.3g}")
            else:
                row.append(f"{ms:.3g} x{r.speedup.get(b, float('nan')):.2f}")
        table.add_row(*row)
    return table


def attempts_table(result: ExportResult) -> Any:
    from rich.table import Table

    table = Table(title="INT8 accuracy-aware search", title_justify="left")
    for col in ("#", "settings", "accuracy", "drop", "within bound"):
        table.add_column(col, justify="right" if col in ("#", "accuracy", "drop") else "left")
    for a in result.attempts:
        table.add_row(
            str(a.index),
            a.settings + (f" [red]{a.note}[/]" if a.note else ""),
            "-" if a.accuracy is None else f"{a.accuracy * 100:.2f}%",
            "-" if a.accuracy_drop_pp is None else f"{a.accuracy_drop_pp:.2f} pp",
            "[green]yes[/]" if a.within_bound else "no",
        )
    return table


def summary_lines(result: ExportResult) -> list[str]:
    parity = ", ".join(
        f"batch {p.batch_size}: max |Δ| {p.max_abs_diff:.2g}, "
        f"top-1 {p.top1_agreement * 100:.0f}% ({p.n} images)"
        for p in result.parity
    )
    nodes = result.node_counts
    lines = [
        f"route {result.route}, opset {result.opset}, input {result.layout} named {INPUT_NAME!r}",
        f"nodes {nodes['converted']} converted -> {nodes['simplified']} simplified -> {nodes['final']} final"
        + (f" (rewrites: {', '.join(result.graph_rewrites)})" if result.graph_rewrites else ""),
        f"parity vs Keras on real {result.dataset} test images: {parity}",
        "latency: quick CPU check, variants run round-robin with FP32; `edgecnn bench` is the careful one",
    ]
    slow = [
        f"{r.name} (b{', b'.join(str(b) for b, x in r.speedup.items() if x < 1.0)}"
        + (", a GPU variant)" if r.name == "fp16" else ")")
        for r in result.variants.values()
        if r.slower_than_fp32
    ]
    if slow:
        lines.append(f"[red]slower than FP32 on this CPU:[/] {', '.join(slow)}")
    dropped = [r.name for r in result.variants.values() if not r.kept]
    if dropped:
        lines.append(
            f"[red]✗ not kept, accuracy drop over {result.max_accuracy_drop:g} pp:[/] {', '.join(dropped)}"
        )
    if result.selected:
        lines.append(
            f"★ auto: selected {result.selected} (fastest at batch 1 within {result.max_accuracy_drop:g} pp)"
        )
    return lines
