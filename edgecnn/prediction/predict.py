"""`predict`: classify image files with an ONNX model, preprocessing taken from the model's own metadata.

Runtime side: numpy, Pillow and onnxruntime only, never TensorFlow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core import environment as sysinfo
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import OUTPUT_NAME, ModelMetadata, Normalization, read_metadata
from edgecnn.core.outputs import atomic_write_json, refuse_overwrite, to_jsonable
from edgecnn.data.images import FittedImage, expand_inputs, fit_image, label_from_filename
from edgecnn.runtime.inference import as_probabilities
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.sessions import DEVICES, SessionConfig, open_session

# Outputs of a softmax, allowing for the rounding of an int8-quantized softmax.
# Datasets whose images are light content on black, where a bright image is probably inverted.
DARK_BACKGROUND_DATASETS = ("mnist", "fashion_mnist")


@dataclass(frozen=True)
class LoadedModel:
    """An open session plus everything needed to feed it: from metadata, or inferred and said so."""

    path: Path
    session: Any
    provider: str
    meta: ModelMetadata
    has_metadata: bool
    input_name: str
    output_name: str
    num_classes: int | None
    assumptions: tuple[str, ...]

    def class_labels(self, num_classes: int) -> tuple[str, ...]:
        if self.meta.class_labels and len(self.meta.class_labels) == num_classes:
            return self.meta.class_labels
        return tuple(str(i) for i in range(num_classes))

    def summary(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "has_edgecnn_metadata": self.has_metadata,
            "model_name": self.meta.model_name,
            "variant": self.meta.variant,
            "dataset": self.meta.dataset,
            "input_shape": list(self.meta.input_shape),
            "layout": self.meta.layout,
            "normalization": self.meta.normalization.to_dict(),
            "input_name": self.input_name,
            "output_name": self.output_name,
            "size_bytes": self.path.stat().st_size,
        }


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _infer_metadata(shape: list[Any], path: Path) -> tuple[ModelMetadata, list[str]]:
    """Guess layout and image size from the graph input of a model edgecnn did not export."""
    dims = [_static(d) for d in shape]
    if len(dims) == 4 and dims[3] in (1, 3) and dims[1] and dims[2]:
        layout, (h, w, c) = "NHWC", (dims[1], dims[2], dims[3])
    elif len(dims) == 4 and dims[1] in (1, 3) and dims[2] and dims[3]:
        layout, (h, w, c) = "NCHW", (dims[2], dims[3], dims[1])
    else:
        raise EdgecnnError(
            f"{path} has no edgecnn metadata and its input shape {shape} is not an image batch "
            "(N,H,W,C or N,C,H,W with 1 or 3 channels); export it with `edgecnn export`"
        )
    meta = ModelMetadata(input_shape=(h, w, c), layout=layout, normalization=Normalization())
    return meta, [
        f"model has no edgecnn metadata: assumed {layout} {h}x{w}x{c} input, "
        "pixels scaled to 0-1 (x/255), class labels = output indices"
    ]


def load_model(path: str | Path, session_config: SessionConfig) -> LoadedModel:
    """Open `path` and work out its input contract; refuse models that are not image classifiers."""
    session, provider = open_session(path, session_config)
    path = Path(path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise EdgecnnError(f"{path} takes {len(inputs)} inputs ({names}); predict/eval need one image input")
    graph_in = inputs[0]
    if graph_in.type != "tensor(float)":
        raise EdgecnnError(f"{path} takes {graph_in.type} input; predict/eval feed float32 images")
    by_name = {o.name: o for o in outputs}
    graph_out = by_name.get(OUTPUT_NAME, outputs[0])
    meta = read_metadata(session)
    assumptions: list[str] = []
    if meta is None:
        meta, assumptions = _infer_metadata(list(graph_in.shape), path)
        has_metadata = False
    else:
        has_metadata = True
        graph_dims = [_static(d) for d in graph_in.shape[1:]]
        expected = list(meta.graph_input_shape)
        if len(graph_dims) != 3 or any(
            g is not None and g != e for g, e in zip(graph_dims, expected, strict=True)
        ):
            raise EdgecnnError(
                f"{path}: metadata says input {expected} ({meta.layout}) but the graph takes "
                f"{list(graph_in.shape)}; re-export the model"
            )
    out_dims = list(graph_out.shape)
    num_classes = _static(out_dims[-1]) if len(out_dims) == 2 else None
    if len(out_dims) != 2:
        raise EdgecnnError(f"{path} outputs shape {out_dims}; predict/eval need (batch, classes) scores")
    if meta.class_labels and num_classes is not None and len(meta.class_labels) != num_classes:
        raise EdgecnnError(
            f"{path}: metadata lists {len(meta.class_labels)} class labels but the model outputs "
            f"{num_classes} scores; re-export the model"
        )
    return LoadedModel(
        path=path,
        session=session,
        provider=provider,
        meta=meta,
        has_metadata=has_metadata,
        input_name=graph_in.name,
        output_name=graph_out.name,
        num_classes=num_classes,
        assumptions=tuple(assumptions),
    )


def run_batches(model: LoadedModel, batch: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    """Run prepared float32 inputs in chunks; returns (scores, seconds spent inside session.run)."""
    outs, seconds = [], 0.0
    for start in range(0, len(batch), batch_size):
        chunk = batch[start : start + batch_size]
        t0 = time.perf_counter()
        (scores,) = model.session.run([model.output_name], {model.input_name: chunk})
        seconds += time.perf_counter() - t0
        outs.append(np.asarray(scores))
    return np.concatenate(outs, axis=0), seconds


def default_output_path(kind: str, ext: str = "") -> Path:
    """`<kind>-<local timestamp><ext>` in the working directory, like bench's default; a rerun in the
    same second gets a -2 suffix instead of colliding with (or overwriting) the earlier result."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = Path(f"{kind}-{stamp}{ext}"), 2
    while candidate.exists():
        candidate, n = Path(f"{kind}-{stamp}-{n}{ext}"), n + 1
    return candidate


@dataclass(frozen=True)
class PredictConfig:
    model: Path
    inputs: tuple[Path, ...]
    top_k: int = 3
    device: str = "cpu"
    batch_size: int = 32
    invert: bool = False
    output: Path | None = None  # JSON file; None = predict-<timestamp>.json in the working directory
    force: bool = False
    intra_op_threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        object.__setattr__(self, "inputs", tuple(Path(p) for p in self.inputs))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))
        if not self.inputs:
            raise EdgecnnError("no input images given; pass image files or directories")
        if self.top_k < 1:
            raise EdgecnnError(f"--top-k must be >= 1, got {self.top_k}")
        if self.batch_size < 1:
            raise EdgecnnError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.device not in DEVICES:
            raise EdgecnnError(f"unknown device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.intra_op_threads < 0:
            raise EdgecnnError("--threads must be >= 0 (0 = ONNX Runtime's default)")
        if self.output is not None:
            if self.output.is_dir():
                raise EdgecnnError(f"--output {self.output} is a directory; give a .json file name")
            refuse_overwrite(self.output, self.force)


@dataclass(frozen=True)
class ClassScore:
    index: int
    label: str
    probability: float


@dataclass(frozen=True)
class ImagePrediction:
    path: Path
    top: tuple[ClassScore, ...]
    true_index: int | None
    true_label: str | None
    correct: bool | None
    original_shape: tuple[int, int, int]
    notes: tuple[str, ...]
    looks_inverted: bool

    @property
    def predicted(self) -> ClassScore:
        return self.top[0]


@dataclass(frozen=True)
class PredictResult:
    config: PredictConfig
    model: dict[str, Any]
    provider: str
    predictions: tuple[ImagePrediction, ...]
    assumptions: tuple[str, ...]
    hints: tuple[str, ...]
    timings: dict[str, float]
    environment: dict[str, Any]
    output_path: Path | None = None
    applied_softmax: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labelled(self) -> list[ImagePrediction]:
        return [p for p in self.predictions if p.correct is not None]

    @property
    def n_correct(self) -> int:
        return sum(1 for p in self.labelled if p.correct)

    def to_document(self) -> dict[str, Any]:
        labelled = self.labelled
        return to_jsonable(
            {
                "command": "predict",
                "config": self.config,
                "model": self.model,
                "provider": self.provider,
                "assumptions": list(self.assumptions),
                "hints": list(self.hints),
                "applied_softmax": self.applied_softmax,
                "predictions": [
                    {
                        "path": str(p.path),
                        "predicted": p.predicted.label,
                        "predicted_index": p.predicted.index,
                        "probability": p.predicted.probability,
                        "top_k": [
                            {"label": s.label, "index": s.index, "probability": s.probability} for s in p.top
                        ],
                        "true_label": p.true_label,
                        "correct": p.correct,
                        "original_shape": list(p.original_shape),
                        "preprocessing_notes": list(p.notes),
                        "looks_inverted": p.looks_inverted,
                    }
                    for p in self.predictions
                ],
                "summary": {
                    "images": len(self.predictions),
                    "labelled": len(labelled),
                    "correct": self.n_correct,
                    "accuracy_on_labelled": (self.n_correct / len(labelled)) if labelled else None,
                },
                "timings": self.timings,
                "output_path": self.output_path,
                "environment": self.environment,
            }
        )


def _hints(fitted: list[FittedImage], config: PredictConfig, meta: ModelMetadata) -> list[str]:
    inverted = [f for f in fitted if f.looks_inverted]
    if not inverted or config.invert:
        return []
    names = ", ".join(f.path.name for f in inverted[:3]) + (" ..." if len(inverted) > 3 else "")
    head = f"{len(inverted)} of {len(fitted)} image(s) have a bright background ({names})"
    if meta.dataset in DARK_BACKGROUND_DATASETS:
        return [
            f"{head}; this {meta.dataset} model was trained on light shapes on a dark background: "
            "if these are dark on white, rerun with --invert"
        ]
    return [
        f"{head}; if the model was trained on light shapes on a dark background (like MNIST), "
        "rerun with --invert"
    ]


def predict(config: PredictConfig) -> PredictResult:
    """Classify every image in `config.inputs`; save and return the top-k classes of each."""
    files = expand_inputs(config.inputs)
    t0 = time.perf_counter()
    model = load_model(
        config.model, SessionConfig(device=config.device, intra_op_threads=config.intra_op_threads)
    )
    load_s = time.perf_counter() - t0
    if model.num_classes is not None and config.top_k > model.num_classes:
        raise EdgecnnError(f"--top-k {config.top_k} exceeds the model's {model.num_classes} classes")

    t0 = time.perf_counter()
    fitted = [fit_image(f, model.meta.input_shape, invert=config.invert) for f in files]
    batch = prepare_batch(np.stack([f.pixels for f in fitted]), model.meta)
    preprocess_s = time.perf_counter() - t0

    scores, inference_s = run_batches(model, batch, config.batch_size)
    probs, applied_softmax = as_probabilities(scores)
    num_classes = probs.shape[1]
    if config.top_k > num_classes:
        raise EdgecnnError(f"--top-k {config.top_k} exceeds the model's {num_classes} classes")
    labels = model.class_labels(num_classes)

    predictions = []
    for f, row in zip(fitted, probs, strict=True):
        # Stable sort: equal probabilities keep class order, so results are reproducible.
        order = np.argsort(-row, kind="stable")[: config.top_k]
        top = tuple(ClassScore(int(i), labels[int(i)], float(row[i])) for i in order)
        true_index = label_from_filename(f.path, labels)
        predictions.append(
            ImagePrediction(
                path=f.path,
                top=top,
                true_index=true_index,
                true_label=None if true_index is None else labels[true_index],
                correct=None if true_index is None else bool(top[0].index == true_index),
                original_shape=f.original_shape,
                notes=f.notes,
                looks_inverted=f.looks_inverted,
            )
        )
    assumptions = list(model.assumptions)
    if applied_softmax:
        assumptions.append("model outputs are not probabilities (logits?): applied softmax")
    output = config.output or default_output_path("predict", ".json")
    result = PredictResult(
        config=config,
        model=model.summary(),
        provider=model.provider,
        predictions=tuple(predictions),
        assumptions=tuple(assumptions),
        hints=tuple(_hints(fitted, config, model.meta)),
        timings={"session_load_s": load_s, "preprocess_s": preprocess_s, "inference_s": inference_s},
        environment=sysinfo.environment_info(),
        output_path=output,
        applied_softmax=applied_softmax,
    )
    atomic_write_json(output, result.to_document(), force=config.force)
    return result


def result_table(result: PredictResult) -> Any:
    """A rich table: one row per image with its top-k and, where the file name says, right or wrong."""
    from rich import box
    from rich.table import Table

    has_truth = bool(result.labelled)
    # Compact enough for an 80-column terminal: the runners-up sit in one column.
    table = Table(title=f"{result.model['path']} on {result.provider}", title_justify="left", box=box.SIMPLE)
    table.add_column("image", no_wrap=True)
    table.add_column("pred", justify="right")
    table.add_column("prob", justify="right")
    if result.config.top_k > 1:
        table.add_column(f"next {result.config.top_k - 1}", no_wrap=True)
    if has_truth:
        table.add_column("true", justify="right")
        table.add_column("ok", justify="center")
    for p in result.predictions:
        row = [p.path.name, p.predicted.label, f"{p.predicted.probability:.3f}"]
        if result.config.top_k > 1:
            row.append("  ".join(f"{s.label} {s.probability:.3f}" for s in p.top[1:]))
        if has_truth:
            mark = "" if p.correct is None else ("[green]yes[/]" if p.correct else "[red]WRONG[/]")
            row += [p.true_label or "-", mark]
        table.add_row(*row)
    return table
