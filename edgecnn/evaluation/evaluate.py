"""`eval`: accuracy, per-class accuracy and confusion matrix of an ONNX model on a real test set.

numpy + onnxruntime only: the figure must be reproducible on a device without TensorFlow, and equal to
the one `export` measured for the same file (same test set, same metadata-driven preprocessing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core import environment as sysinfo
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.files import timestamped_path
from edgecnn.core.outputs import atomic_dir, atomic_write_json, refuse_overwrite, to_jsonable
from edgecnn.core.plotting import NO_MATPLOTLIB, plotting_available
from edgecnn.core.progress import Progress, Tracker
from edgecnn.evaluation.confusion import confusion_counts, plot_confusion_matrix
from edgecnn.runtime.inference import as_probabilities, run_batches
from edgecnn.runtime.loaded_model import RUNTIME_KEYS, LoadedModel, load_model
from edgecnn.runtime.preprocess import prepare_batch
from edgecnn.runtime.session_config import SessionConfig

RESULT_JSON = "eval.json"
CONFUSION_PNG = "confusion_matrix.png"


@dataclass(frozen=True)
class EvalConfig:
    model: Path
    data: str | None = None  # None = the dataset recorded in the model's metadata
    data_dir: Path | None = None
    batch_size: int = 256
    limit: int | None = None  # first N test images (deterministic), None = all
    output_dir: Path | None = None  # None = eval-<timestamp>/ in the working directory
    force: bool = False
    plot: bool = True
    download: bool = False  # eval never downloads: that is Keras, and runtime commands never import TF
    session: SessionConfig = field(default_factory=SessionConfig)  # runtime, device, threads, precision
    allow_cpu_nodes: bool = False  # on cuda/tensorrt: accept nodes ORT ran on the CPU

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        for name in ("data_dir", "output_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.batch_size < 1:
            raise EdgecnnError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.limit is not None and self.limit < 1:
            raise EdgecnnError(f"--limit must be >= 1, got {self.limit}")
        if self.download:
            raise EdgecnnError(
                "eval does not download datasets (that needs TensorFlow, which runtime commands never "
                "import); fetch it once with `edgecnn data fetch NAME` and copy it here, or pass --data-dir"
            )
        if self.data_dir is not None and not self.data_dir.is_dir():
            raise EdgecnnError(f"--data-dir {self.data_dir} is not a directory")
        if self.output_dir is not None:
            refuse_overwrite(self.output_dir, self.force)


@dataclass(frozen=True)
class ClassStats:
    label: str
    support: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass(frozen=True)
class EvalResult:
    config: EvalConfig
    model: dict[str, Any]
    provider: str
    dataset: dict[str, Any]
    num_images: int
    correct: int
    per_class: tuple[ClassStats, ...]
    confusion: np.ndarray  # [true, predicted] counts
    mean_confidence: float
    assumptions: tuple[str, ...]
    timings: dict[str, float]
    environment: dict[str, Any]
    output_dir: Path | None = None
    json_path: Path | None = None
    plot_path: Path | None = None
    progress_reported: bool = False  # whether a progress callback was given

    @property
    def accuracy(self) -> float:
        return self.correct / self.num_images

    def config_document(self) -> dict[str, Any]:
        """The config as eval.json records it, with whether progress was shown (where it always was)."""
        doc: dict[str, Any] = {}
        for key, value in to_jsonable(self.config).items():
            if key == "download":
                doc["progress"] = self.progress_reported
            doc[key] = value
        return doc

    def to_dict(self) -> dict[str, Any]:
        """The same document the command saves as JSON, in plain JSON types (the public API's name)."""
        from edgecnn.core.outputs import to_jsonable

        return to_jsonable(self.to_document())

    def to_document(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "command": "eval",
                "config": self.config_document(),
                "model": self.model,
                "provider": self.provider,
                "runtime": {k: self.model.get(k) for k in RUNTIME_KEYS},
                "placement": self.model.get("placement"),
                "dataset": self.dataset,
                "num_images": self.num_images,
                "correct": self.correct,
                "accuracy": self.accuracy,
                "mean_confidence": self.mean_confidence,
                "per_class": [
                    {"label": c.label, "support": c.support, "correct": c.correct, "accuracy": c.accuracy}
                    for c in self.per_class
                ],
                "confusion_matrix": {
                    "rows": "true class",
                    "columns": "predicted class",
                    "labels": [c.label for c in self.per_class],
                    "counts": self.confusion,
                },
                "assumptions": list(self.assumptions),
                "timings": self.timings,
                "outputs": {"json": self.json_path, "confusion_png": self.plot_path},
                "environment": self.environment,
            }
        )


def _resolve_dataset_name(config: EvalConfig, model: LoadedModel) -> tuple[str, list[str]]:
    from edgecnn.data import names_help, parse_name

    recorded = model.meta.dataset
    if config.data is None:
        if recorded is None:
            # Never guessed from the input shape: a 28x28x1 10-class model is not necessarily MNIST.
            raise EdgecnnError(
                f"{config.model} does not record its dataset; pass --data with its test set "
                f"({names_help(sep=' | ', last=' | ')})"
            )
        return recorded, []
    wanted = parse_name(config.data)
    if recorded is not None:
        if not parse_name(recorded).same_as(wanted):
            raise EdgecnnError(
                f"{config.model} was trained on {recorded}, its class scores mean nothing on {config.data}; "
                f"evaluate it with --data {recorded}"
            )
        return recorded, []
    return wanted.text, [f"model does not record its dataset: evaluated on {wanted.text} as asked"]


def _load_test_set(
    name: str, config: EvalConfig, model: LoadedModel
) -> tuple[np.ndarray, np.ndarray, Any, list[str]]:
    from edgecnn.data import convert_images, load_dataset, parse_name

    h, w, c = model.meta.input_shape
    if parse_name(name).any_image_size:
        # Folder images come in any size: load them at the model's input shape, as export did.
        ds = load_dataset(name, config.data_dir, image_size=(h, w), channels=c, download=config.download)
    else:
        ds = load_dataset(name, config.data_dir, download=config.download)
    x, y = ds.x_test, ds.y_test
    if len(x) == 0:
        raise EdgecnnError(f"{ds.name} has no test images to evaluate on ({ds.source})")
    if config.limit is not None:
        if config.limit > len(x):
            raise EdgecnnError(f"--limit {config.limit} exceeds the {len(x)} test images of {ds.name}")
        x, y = x[: config.limit], y[: config.limit]
    notes: list[str] = []
    if tuple(x.shape[1:]) != (h, w, c):
        # The same conversion train used when it loaded the dataset at the model's input shape.
        dh, dw, dc = x.shape[1:]
        x = convert_images(x, (h, w), c)
        notes.append(f"converted {ds.name} test images from {dh}x{dw}x{dc} to the model's {h}x{w}x{c}")
    return x, y, ds, notes


@dataclass(frozen=True)
class Scored:
    """The model's answer on every test image."""

    predicted: np.ndarray  # arg-max class per image
    confidence: np.ndarray  # probability of the predicted class
    applied_softmax: bool  # the outputs were logits, so softmax made the probabilities
    preprocess_s: float
    inference_s: float


def score_test_set(
    model: LoadedModel, x: np.ndarray, num_classes: int, batch_size: int, progress: Progress | None = None
) -> Scored:
    """Prepare `x` as export did and run it in batches of `batch_size`."""
    t = time.perf_counter()
    prepared = prepare_batch(x, model.meta)
    preprocess_s = time.perf_counter() - t
    with Tracker(progress, "eval", len(x), "evaluating") as tracker:
        run = run_batches(model.session, prepared, batch_size, on_batch=tracker.advance)
    scores = run.scores
    if scores.shape != (len(x), num_classes):
        raise EdgecnnError(f"model returned scores shaped {scores.shape} for {len(x)} images")
    # argmax of the raw scores, exactly what export's accuracy uses (softmax never changes it).
    predicted = np.argmax(scores, axis=1).astype(np.int64)
    confidence = np.empty(len(x), dtype=np.float64)
    applied_softmax = False
    for start in range(0, len(x), batch_size):  # per batch, as each batch's scores came out
        probs, softmaxed = as_probabilities(scores[start : start + batch_size], model.meta.output)
        applied_softmax |= softmaxed
        confidence[start : start + batch_size] = probs[
            np.arange(len(probs)), predicted[start : start + batch_size]
        ]
    return Scored(predicted, confidence, applied_softmax, preprocess_s, run.inference_s)


def _check_labels(config: EvalConfig, model: LoadedModel, ds: Any) -> tuple[str, ...]:
    labels = tuple(ds.class_labels)
    if model.num_classes is not None and model.num_classes != len(labels):
        raise EdgecnnError(
            f"{config.model} outputs {model.num_classes} classes but {ds.name} has {len(labels)}; "
            "it was not trained on this dataset"
        )
    if model.has_metadata and model.meta.class_labels and tuple(model.meta.class_labels) != labels:
        raise EdgecnnError(
            f"{config.model}'s class labels {list(model.meta.class_labels)[:4]}... differ from {ds.name}'s "
            f"{list(labels)[:4]}...; it was not trained on this dataset"
        )
    return labels


def evaluate(config: EvalConfig, *, progress: Progress | None = None) -> EvalResult:
    """Run the model over the test set (or its first `limit` images) and save eval.json + the plot."""
    t0 = time.perf_counter()
    model = load_model(
        config.model,
        config.session,
        allow_cpu_nodes=config.allow_cpu_nodes,
        batch_size=config.batch_size,
    )
    load_s = time.perf_counter() - t0
    name, assumptions = _resolve_dataset_name(config, model)
    assumptions = list(model.assumptions) + assumptions

    t0 = time.perf_counter()
    x, y, ds, notes = _load_test_set(name, config, model)
    assumptions += notes
    labels = _check_labels(config, model, ds)
    data_s = time.perf_counter() - t0

    scored = score_test_set(model, x, len(labels), config.batch_size, progress)
    if scored.applied_softmax and model.meta.output is None:
        assumptions.append("model outputs are not probabilities (logits?): confidence computed with softmax")
    confusion = confusion_counts(y, scored.predicted, len(labels))
    per_class = tuple(
        ClassStats(label=labels[i], support=int(confusion[i].sum()), correct=int(confusion[i, i]))
        for i in range(len(labels))
    )
    result = EvalResult(
        config=config,
        model=model.summary(),
        provider=model.provider,
        dataset={
            "name": ds.name,
            "source": ds.source,
            "split": "test",
            "images": int(len(x)),
            "of_total": int(len(ds.x_test)),
            "class_labels": list(labels),
            **({"folder_split": ds.split} if ds.split else {}),  # same fingerprint as train.json's
        },
        num_images=int(len(x)),
        correct=int(np.trace(confusion)),
        per_class=per_class,
        confusion=confusion,
        mean_confidence=float(scored.confidence.mean()),
        assumptions=tuple(assumptions),
        timings={
            "session_load_s": load_s,
            "data_load_s": data_s,
            "preprocess_s": scored.preprocess_s,
            "inference_s": scored.inference_s,
            "images_per_s": len(x) / scored.inference_s if scored.inference_s > 0 else None,
        },
        environment=sysinfo.environment_info(),
        progress_reported=progress is not None,
    )
    return _save(result, y, scored.predicted, config.output_dir or timestamped_path("eval"))


def _plot_title(result: EvalResult) -> str:
    name = result.model.get("model_name") or Path(result.model["path"]).name
    return (
        f"{name} ({result.model.get('variant')}) on {result.dataset['name']} test\n"
        f"accuracy {result.accuracy:.4f} over {result.num_images} images, {result.provider}"
    )


def _save(result: EvalResult, y_true: np.ndarray, y_pred: np.ndarray, out_dir: Path) -> EvalResult:
    config = result.config
    with atomic_dir(out_dir, force=config.force) as tmp:
        plot_path = None
        if config.plot and not plotting_available():
            result = replace(result, assumptions=(*result.assumptions, NO_MATPLOTLIB))
        elif config.plot:
            labels = [c.label for c in result.per_class]
            plot_confusion_matrix(y_true, y_pred, labels, tmp / CONFUSION_PNG, title=_plot_title(result))
            plot_path = out_dir / CONFUSION_PNG
        final = replace(result, output_dir=out_dir, json_path=out_dir / RESULT_JSON, plot_path=plot_path)
        atomic_write_json(tmp / RESULT_JSON, final.to_document())
    return final
