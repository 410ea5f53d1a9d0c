"""The typed hand-off from `edgecnn train` to `edgecnn export`: the model and dataset facts of a run.

`train` writes it into `train.json` (its "model" and "dataset" sections, plus "test_accuracy");
`export` reads it back from the `train.json` beside `model.keras` instead of walking a dict.
TensorFlow-free, like `edgecnn.core.metadata.ModelMetadata` is for the ONNX side."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file
from edgecnn.core.metadata import Normalization
from edgecnn.core.text import one_line

TRAIN_JSON = "train.json"


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class TrainRecord:
    model_name: str | None = None
    dataset: str | None = None  # "mnist", "folder:/path", ...
    class_labels: tuple[str, ...] = ()
    normalization: Normalization | None = None  # how the training images were scaled
    input_shape: tuple[int, int, int] | None = None  # (H, W, C) the dataset was loaded at
    params: int | None = None
    macs: int | None = None  # per image, from the model spec
    test_accuracy: float | None = None
    split: dict[str, Any] | None = None  # folder datasets: the held-out files (FolderSplit.to_dict)
    problems: tuple[str, ...] = field(default=(), compare=False)  # malformed fields that were ignored

    def to_dict(self) -> dict[str, Any]:
        """The train.json sections this record owns (merged into the full document by `train`)."""
        return {
            "model": {"name": self.model_name, "params": self.params, "macs": self.macs},
            "dataset": {
                "name": self.dataset,
                "class_labels": list(self.class_labels),
                "normalization": self.normalization.to_dict() if self.normalization else None,
                "input_shape": list(self.input_shape) if self.input_shape else None,
                "split": self.split,
            },
            "test_accuracy": self.test_accuracy,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TrainRecord:
        """Lenient on purpose: a train.json from an older edgecnn or edited by hand still exports; each
        field that cannot be read is left out and named in `problems`."""
        model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
        ds = doc.get("dataset") if isinstance(doc.get("dataset"), dict) else {}
        problems: list[str] = []
        normalization = None
        if ds.get("normalization"):
            try:
                normalization = Normalization.from_dict(ds["normalization"])
            except (KeyError, TypeError, ValueError, EdgecnnError):
                problems.append("train.json normalization is malformed")
        shape = ds.get("input_shape")
        input_shape = None
        if isinstance(shape, list) and len(shape) == 3 and all(_int_or_none(d) for d in shape):
            input_shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        labels = ds.get("class_labels") or []
        accuracy = doc.get("test_accuracy")
        return cls(
            model_name=str(model["name"]) if model.get("name") else None,
            dataset=str(ds["name"]) if ds.get("name") else None,
            class_labels=tuple(str(x) for x in labels) if isinstance(labels, list) else (),
            normalization=normalization,
            input_shape=input_shape,
            params=_int_or_none(model.get("params")),
            macs=_int_or_none(model.get("macs")),
            test_accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
            split=ds["split"] if isinstance(ds.get("split"), dict) else None,
            problems=tuple(problems),
        )

    @classmethod
    def beside(cls, model_path: Path) -> TrainRecord | None:
        """The record in the train.json next to a model file; None when there is none."""
        path = model_path.parent / TRAIN_JSON
        if not path.exists():
            return None
        check_input_file(path, TRAIN_JSON)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EdgecnnError(
                f"{path} is not readable JSON ({one_line(exc, 120)}); fix or remove it"
            ) from None
        if not isinstance(doc, dict):
            raise EdgecnnError(f"{path} is not a train.json document (expected a JSON object)")
        return cls.from_dict(doc)
