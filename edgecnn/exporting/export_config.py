"""What an export is asked to do: `ExportConfig` (validated on construction) and the export's fixed
numbers and names (opset range, parity tolerance, bundle file names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP
from edgecnn.core.errors import EdgecnnError, EdgecnnTypeError
from edgecnn.exporting.input_contract import parse_normalization
from edgecnn.exporting.quantization.quant_config import QuantizationConfig

QUANTIZE_CHOICES = ("int8", "fp16", "dynamic", "all", "auto")
# tf2onnx 1.17 writes opsets up to 18; 13 is the first with per-axis QuantizeLinear (per-channel INT8).
MIN_OPSET, MAX_OPSET = 13, 18
DEFAULT_OPSET = 17
# ONNX must match Keras this closely (and agree on every top-1) before anything is written.
PARITY_MAX_ABS_DIFF = 1e-4
EXPORT_JSON = "export.json"
VARIANT_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx", "fp16": "model.fp16.onnx",
                 "dynamic": "model.dynamic.onnx", "int8-trt": "model.int8-trt.onnx"}  # fmt: skip
# Model file formats a bundle can hold: ONNX always (the reference every variant is measured against),
# TFLite beside it on request (exporting/formats/tflite.py).
FORMATS = ("onnx", "tflite")
# Where the quantized graph will run: cpu (ONNX Runtime's CPU kernels) or tensorrt (see
# quantization/tensorrt.py).
TARGETS = ("cpu", "tensorrt")


def check_labels(labels: tuple[str, ...]) -> None:
    """Class labels are what predict prints: blank or repeated names would make its answers unreadable."""
    if len(labels) == 0:
        raise EdgecnnError("--labels must name at least one class")
    blank = [i for i, label in enumerate(labels) if not label.strip()]
    if blank:
        raise EdgecnnError(
            f"--labels has {len(blank)} empty name(s) (positions {blank[:5]}); name every class"
        )
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise EdgecnnError(
            f"--labels repeats {', '.join(map(repr, repeated[:5]))}; every class needs its own name"
        )


@dataclass(frozen=True)
class ExportConfig:
    """What `export` converts, where the bundle goes, which variants it builds and how it checks them."""

    model_path: Path
    output_dir: Path
    quantize: tuple[str, ...] = ()
    data_dir: Path | None = None
    # None: from train.json, else no labelled data (never guessed from the input shape)
    dataset: str | None = None
    labels: tuple[str, ...] | None = None
    # How uint8 pixels become the model input (input_contract.parse_normalization); None: from train.json,
    # the model's own preprocessing layers, or the dataset.
    normalization: str | None = None
    # INT8 calibration images: a dataset name or a folder of (unlabelled) images; None: the dataset's.
    calibration_data: str | None = None
    # Refuse an FP32 model whose accuracy is near chance or far below train.json's (see exporting.guard).
    accuracy_guard: bool = True
    # Where the model came from when model_path is a stand-in (the Python API's in-memory keras.Model).
    model_origin: str | None = None
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
    # INT8 recipes for other instruction sets (quantization/recipes.py), each saved as model.int8-<name>.onnx
    # beside the default model.int8.onnx, for `edgecnn tune` to choose from on the device.
    int8_recipes: tuple[str, ...] = ()
    force: bool = False
    target: str = "cpu"
    formats: tuple[str, ...] = ("onnx",)

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
        self._check_target()
        self._check_formats()
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
        if self.normalization is not None:
            parse_normalization(self.normalization)  # a typo fails here, before the model is loaded
        if self.calibration_data is not None and not self.calibration_data.strip():
            raise EdgecnnError("--calibration-data names a dataset or a folder of images")
        if self.labels is not None:
            check_labels(self.labels)
        if self.int8_recipes and self.target == "tensorrt":
            raise EdgecnnError("--int8-recipes are CPU recipes; --target tensorrt builds its own INT8 graph")
        if self.int8_recipes:
            from edgecnn.exporting.quantization.recipes import parse_recipes

            object.__setattr__(self, "int8_recipes", parse_recipes(",".join(self.int8_recipes)))
            if "int8" not in self.variants:
                raise EdgecnnError("--int8-recipes needs --quantize int8, all or auto")

    def input_paths(self) -> tuple[Path, ...]:
        """What export reads (the model, the data directory): the bundle may never be or hold them."""
        return tuple(Path(p) for p in (self.model_path, self.data_dir) if p is not None)

    def _check_formats(self) -> None:
        given = self.formats.split(",") if isinstance(self.formats, str) else self.formats  # "onnx,tflite"
        if not isinstance(given, (tuple, list)) or not all(isinstance(f, str) for f in given):
            raise EdgecnnTypeError(f"formats must be names like 'onnx,tflite', not {self.formats!r}"[:160])
        formats = tuple(dict.fromkeys(f.strip().lower() for f in given if f.strip()))
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise EdgecnnError(f"unknown --formats value {unknown[0]!r}; choose from {', '.join(FORMATS)}")
        if "onnx" not in formats:
            raise EdgecnnError("--formats must include onnx: every other format is measured against it")
        if "tflite" in formats and self.target == "tensorrt":
            raise EdgecnnError("--target tensorrt builds ONNX for TensorRT; drop tflite from --formats")
        object.__setattr__(self, "formats", formats)

    def _check_target(self) -> None:
        if self.target not in TARGETS:
            raise EdgecnnError(f"unknown --target {self.target!r}; choose one of {', '.join(TARGETS)}")
        if self.target != "tensorrt":
            return
        if "auto" in self.quantize:
            raise EdgecnnError("--quantize auto picks by CPU latency; with --target tensorrt ask for int8")
        if "dynamic" in self.quantize:
            raise EdgecnnError(
                "--target tensorrt cannot use dynamic quantization (ConvInteger/MatMulInteger, which "
                "TensorRT does not run); use --quantize int8"
            )
        if not {"int8", "all"} & set(self.quantize):
            raise EdgecnnError("--target tensorrt shapes the INT8 variant; add --quantize int8")

    @property
    def variants(self) -> tuple[str, ...]:
        """Variant names to build, in report order. With --target tensorrt the INT8 variant is the
        TensorRT one (int8-trt) and there is no dynamic variant."""
        if self.target == "tensorrt":
            wanted = set(self.quantize) | ({"int8", "fp16"} if "all" in self.quantize else set())
            return tuple(v for v in ("int8-trt", "fp16") if v.split("-")[0] in wanted)
        if "auto" in self.quantize or "all" in self.quantize:
            return ("int8", "fp16", "dynamic")
        return tuple(v for v in ("int8", "fp16", "dynamic") if v in self.quantize)

    @property
    def step_count(self) -> int:
        """Progress steps: load model, load data, convert, parity, FP32 eval, each variant, latency."""
        tflite = 0 if "tflite" not in self.formats else 1 + sum(v in self.variants for v in ("int8", "fp16"))
        return 5 + len(self.variants) + len(self.int8_recipes) + tflite + (1 if self.latency else 0)

    @property
    def effective_max_drop(self) -> float | None:
        """The bound the user relies on (refused without labelled data): --max-accuracy-drop, or the
        default bound for --quantize auto, else None."""
        if self.max_accuracy_drop is not None:
            return self.max_accuracy_drop
        return DEFAULT_MAX_ACCURACY_DROP_PP if "auto" in self.quantize else None

    @property
    def accuracy_bound(self) -> float:
        """The bound every variant is measured against (core.accuracy_bound): the option or the default."""
        return DEFAULT_MAX_ACCURACY_DROP_PP if self.max_accuracy_drop is None else self.max_accuracy_drop

    @property
    def bound_enforced(self) -> bool:
        """An explicit --max-accuracy-drop: files outside it are not written and export exits 1. Under
        the default bound they are kept and marked."""
        return self.max_accuracy_drop is not None


def variant_file(name: str) -> str:
    """The bundle file of a variant: the fixed names, or model.<name>.onnx (model.int8-avx2.onnx)."""
    return VARIANT_FILES.get(name, f"model.{name}.onnx")
