"""`predict`: classify image files with an ONNX model, preprocessing taken from the model's own metadata.

Runtime side: numpy, Pillow and onnxruntime only, never TensorFlow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core import environment as sysinfo
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import timestamped_path
from edgecnn.core.metadata import ModelMetadata
from edgecnn.core.outputs import atomic_write_json, refuse_overwrite, to_jsonable
from edgecnn.data.dataset_registry import DATASETS
from edgecnn.data.images import FittedImage, expand_inputs, fit_image, label_from_filename
from edgecnn.runtime.inference import as_probabilities, run_batches
from edgecnn.runtime.loaded_model import RUNTIME_KEYS, load_model
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.session_config import SessionConfig

# The exit status of `edgecnn predict` when some images could not be read but the others were classified
# and their results saved (1 stays "nothing done": bad option, model, or no readable image at all).
PARTIAL_EXIT = 3
# Datasets whose images are light content on black, where a bright image is probably inverted.


@dataclass(frozen=True)
class PredictConfig:
    model: Path
    inputs: tuple[Path, ...]
    top_k: int = 3
    batch_size: int = 32
    invert: bool = False
    output: Path | None = None  # JSON file; None = predict-<timestamp>.json in the working directory
    force: bool = False
    session: SessionConfig = field(default_factory=SessionConfig)  # runtime, device, threads, precision
    allow_cpu_nodes: bool = False  # on cuda/tensorrt: accept nodes ORT ran on the CPU
    strict: bool = False  # stop at the first image that cannot be read (default: classify the others)

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
        if self.output is not None:
            if self.output.is_dir():
                raise EdgecnnError(f"--output {self.output} is a directory; give a .json file name")
            if self.output.suffix.lower() != ".json":
                # `-o out/dir/` arrives here as `out/dir` (the slash is gone): never write a file so named.
                raise EdgecnnError(
                    f"--output {self.output} does not end in .json; predict writes one JSON file: "
                    "give its name"
                )
            refuse_overwrite(self.output, self.force, inputs=(self.model, *self.inputs), kind="predict")


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
class ImageFailure:
    path: Path
    error: str  # the one-line reason (undecodable, empty, a resize that would distort)


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
    failed: tuple[ImageFailure, ...] = ()  # images that could not be read; the others have predictions

    @property
    def labelled(self) -> list[ImagePrediction]:
        return [p for p in self.predictions if p.correct is not None]

    @property
    def n_correct(self) -> int:
        return sum(1 for p in self.labelled if p.correct)

    def to_dict(self) -> dict[str, Any]:
        """The same document the command saves as JSON, in plain JSON types (the public API's name)."""
        from edgecnn.core.outputs import to_jsonable

        return to_jsonable(self.to_document())

    def to_document(self) -> dict[str, Any]:
        labelled = self.labelled
        return to_jsonable(
            {
                "command": "predict",
                "config": self.config,
                "model": self.model,
                "provider": self.provider,
                "runtime": {k: self.model.get(k) for k in RUNTIME_KEYS},
                "placement": self.model.get("placement"),
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
                "failed": [{"path": str(f.path), "error": f.error} for f in self.failed],
                "summary": {
                    "images": len(self.predictions),
                    "failed": len(self.failed),
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
    if meta.dataset in DATASETS and DATASETS[meta.dataset].dark_background:
        return [
            f"{head}; this {meta.dataset} model was trained on light shapes on a dark background: "
            "if these are dark on white, rerun with --invert"
        ]
    return [
        f"{head}; if the model was trained on light shapes on a dark background (like MNIST), "
        "rerun with --invert"
    ]


def fit_all(
    files: list[Path], input_shape: tuple[int, int, int], config: PredictConfig
) -> tuple[list[FittedImage], list[ImageFailure]]:
    """Every file that can be read, fitted to the model's input; the others with their reason. With
    `strict`, or when no file can be read at all, the first failure is the error."""
    fitted, failed = [], []
    for f in files:
        try:
            fitted.append(fit_image(f, input_shape, invert=config.invert))
        except EdgecnnError as exc:
            if config.strict:
                raise
            failed.append(ImageFailure(f, str(exc)))
    if not fitted:
        if len(failed) == 1:
            raise EdgecnnError(failed[0].error)
        raise EdgecnnError(f"none of the {len(failed)} images could be read; the first: {failed[0].error}")
    return fitted, failed


def predict(config: PredictConfig) -> PredictResult:
    """Classify every image in `config.inputs`; save and return the top-k classes of each. Images that
    cannot be read are listed in `failed` (the CLI then exits PARTIAL_EXIT), unless `config.strict`."""
    files = expand_inputs(config.inputs)
    t0 = time.perf_counter()
    model = load_model(
        config.model,
        config.session,
        allow_cpu_nodes=config.allow_cpu_nodes,
        batch_size=config.batch_size,
    )
    load_s = time.perf_counter() - t0
    if model.num_classes is not None and config.top_k > model.num_classes:
        raise EdgecnnError(f"--top-k {config.top_k} exceeds the model's {model.num_classes} classes")

    t0 = time.perf_counter()
    fitted, failed = fit_all(files, model.meta.input_shape, config)
    batch = prepare_batch(np.stack([f.pixels for f in fitted]), model.meta)
    preprocess_s = time.perf_counter() - t0

    run = run_batches(model.session, batch, config.batch_size)
    probs, applied_softmax = as_probabilities(run.scores, model.meta.output)
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
    if applied_softmax and model.meta.output is None:
        assumptions.append("model outputs are not probabilities (logits?): applied softmax")
    output = config.output or timestamped_path("predict", ".json")
    result = PredictResult(
        config=config,
        model=model.summary(),
        provider=model.provider,
        predictions=tuple(predictions),
        assumptions=tuple(assumptions),
        hints=tuple(_hints(fitted, config, model.meta)),
        timings={"session_load_s": load_s, "preprocess_s": preprocess_s, "inference_s": run.inference_s},
        environment=sysinfo.environment_info(),
        output_path=output,
        applied_softmax=applied_softmax,
        failed=tuple(failed),
    )
    atomic_write_json(output, result.to_document(), force=config.force)
    return result
