"""What an export found: the parity gate's numbers, one report per variant, and the `ExportResult` whose
`to_document()` is export.json. Plain data; the CLI renders it (edgecnn.commands.export)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.outputs import to_jsonable
from edgecnn.exporting.quantization.search import Attempt


@dataclass(frozen=True)
class Parity:
    batch_size: int
    n: int
    max_abs_diff: float
    top1_agreement: float
    passed: bool
    # Largest |output| Keras gave: a diff means little when the outputs themselves are ~0 (random weights).
    output_scale: float = 1.0


@dataclass
class VariantReport:
    name: str
    path: Path | None
    accuracy: float | None  # None: no labelled data
    accuracy_drop_pp: float | None
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
    # INT8 outside the bound: the layers losing the most signal, worst first ({"layer", "sqnr_db"}).
    worst_layers: list[dict[str, Any]] = field(default_factory=list)


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
    dataset: str | None  # None: no labelled data
    class_labels: tuple[str, ...]
    config: dict[str, Any]
    timings: dict[str, float]
    environment: dict[str, Any]
    json_path: Path
    # The input/output contract the bundle's metadata records (input_contract), and what parity ran on.
    output_kind: str = "probabilities"
    normalization: dict[str, Any] = field(default_factory=dict)
    normalization_source: str = "dataset"
    in_model_preprocessing: str | None = None
    parity_inputs: str = ""
    notes: list[str] = field(default_factory=list)
    # "--max-accuracy-drop" (enforced: files outside are not written, exit 1) or "default" (kept, marked)
    bound_source: str = "--max-accuracy-drop"

    @property
    def outside_bound(self) -> list[VariantReport]:
        return [v for v in self.variants.values() if v.within_bound is False]

    @property
    def labelled_data(self) -> bool:
        return self.dataset is not None

    @property
    def failure(self) -> str | None:
        """Why the command must exit non-zero although the bundle (with FP32) was written."""
        if self.bound_met or (self.bound_source == "default" and self.outside_bound):
            return None  # under the default bound, files outside it are kept and marked, not refused
        out = self.outside_bound
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
        doc["labelled_data"] = self.labelled_data
        return doc

    def to_dict(self) -> dict[str, Any]:
        """The export.json document (the name the public API's results share)."""
        return self.to_document()
