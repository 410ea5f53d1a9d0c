"""How static INT8 quantization is done: one frozen `QuantizationConfig`, so tuning a default is a
one-line change. Plain data (no onnx/onnxruntime import), shared by the builders, the search and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgecnn.core.errors import EdgecnnError

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANT_TYPES = ("qint8", "quint8")


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
    # Per-ISA recipes (recipes.py): depthwise convs / the conv fed by the graph input stay float.
    # Only where their input is float: ORT fuses a float op between DQ and Q into its QLinear twin.
    float_depthwise: bool = False
    float_stem: bool = False
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
        if self.reduce_range:
            parts.append("reduce-range")
        if self.activation_type != "quint8" or self.weight_type != "qint8":
            parts.append(f"{self.activation_type}/{self.weight_type}")
        if self.float_depthwise or self.float_stem:
            parts.append(
                "float "
                + "+".join(
                    n for n, on in (("depthwise", self.float_depthwise), ("stem", self.float_stem)) if on
                )
            )
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
            "float_depthwise": self.float_depthwise,
            "float_stem": self.float_stem,
            "extra_options": dict(self.extra_options),
            "seed": self.seed,
        }
