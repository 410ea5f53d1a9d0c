"""The body-layer schema: `LayerSpec` (one validated layer), its spec-file form, and short constructors.

The classifier head is not a body layer: `build_keras_model` always appends Dense(num_classes) with
softmax, named `HEAD_NAME`, so specs (and spec files) list only the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecnn.core.errors import EdgecnnError

LAYER_KINDS = ("conv", "pool", "dropout", "dense", "flatten", "relu", "batchnorm", "gap")
PADDINGS = ("valid", "same")
POOL_MODES = ("max", "avg")
ACTIVATIONS = ("relu", "linear", "tanh", "sigmoid", "elu", "gelu", "swish")
HEAD_NAME = "probabilities"


def require_positive_int(value: Any, where: str, name: str) -> None:
    """Reject bools too: `True` is an int to Python but never a meaningful filter or epoch count."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise EdgecnnError(f"{where} '{name}' must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class LayerSpec:
    """One body layer. `kernel` is the conv kernel or the pool window; `stride` defaults as in Keras."""

    kind: str
    filters: int | None = None  # conv
    units: int | None = None  # dense
    kernel: tuple[int, int] | None = None  # conv kernel / pool window
    stride: tuple[int, int] | None = None  # None: 1 for conv, the window for pool
    padding: str = "valid"
    activation: str | None = None  # conv/dense; None = linear
    rate: float | None = None  # dropout
    mode: str = "max"  # pool: max | avg
    use_bias: bool = True  # conv/dense

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise EdgecnnError(f"unknown layer type {self.kind!r}; use one of {', '.join(LAYER_KINDS)}")
        if self.padding not in PADDINGS:
            raise EdgecnnError(f"{self.kind} padding must be 'valid' or 'same', not {self.padding!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise EdgecnnError(
                f"{self.kind} activation {self.activation!r} is unknown; use one of {', '.join(ACTIVATIONS)}"
            )
        if self.kind == "conv":
            require_positive_int(self.filters, "conv", "filters")
            if self.kernel is None:
                raise EdgecnnError("conv layer needs 'kernel'")
        if self.kind == "dense":
            require_positive_int(self.units, "dense", "units")
        if self.kind == "dropout" and (self.rate is None or not 0.0 <= self.rate < 1.0):
            raise EdgecnnError(f"dropout 'rate' must be in [0, 1), got {self.rate!r}")
        if self.kind == "pool" and self.mode not in POOL_MODES:
            raise EdgecnnError(f"pool 'mode' must be 'max' or 'avg', not {self.mode!r}")
        for name in ("kernel", "stride"):
            value = getattr(self, name)
            if value is not None and (
                len(value) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value)
            ):
                raise EdgecnnError(
                    f"{self.kind} '{name}' must be a positive integer or [h, w], got {value!r}"
                )

    @property
    def window(self) -> tuple[int, int]:
        return self.kernel or (2, 2)  # pool default window, as in Keras

    @property
    def strides(self) -> tuple[int, int]:
        if self.stride is not None:
            return self.stride
        return self.window if self.kind == "pool" else (1, 1)

    def to_dict(self) -> dict[str, Any]:
        """The layer as a spec file writes it (every default spelled out, so a saved spec is explicit)."""
        d: dict[str, Any] = {"type": self.kind}
        if self.kind == "conv":
            d.update(
                filters=self.filters,
                kernel=list(self.window),
                stride=list(self.strides),
                padding=self.padding,
                activation=self.activation or "linear",
                use_bias=self.use_bias,
            )
        elif self.kind == "pool":
            d.update(
                kernel=list(self.window), stride=list(self.strides), padding=self.padding, mode=self.mode
            )
        elif self.kind == "dense":
            d.update(units=self.units, activation=self.activation or "linear", use_bias=self.use_bias)
        elif self.kind == "dropout":
            d.update(rate=self.rate)
        return d


# Short constructors keep the zoo readable.
def conv(
    filters: int,
    k: int,
    *,
    stride: int = 1,
    padding: str = "valid",
    act: str | None = "relu",
    bias: bool = True,
) -> LayerSpec:
    return LayerSpec(
        "conv",
        filters=filters,
        kernel=(k, k),
        stride=(stride, stride),
        padding=padding,
        activation=act,
        use_bias=bias,
    )


def pool(size: int = 2, stride: int | None = None, padding: str = "valid", mode: str = "max") -> LayerSpec:
    s = stride or size
    return LayerSpec("pool", kernel=(size, size), stride=(s, s), padding=padding, mode=mode)


def dense(units: int, act: str | None = "relu", bias: bool = True) -> LayerSpec:
    return LayerSpec("dense", units=units, activation=act, use_bias=bias)


def dropout(rate: float) -> LayerSpec:
    return LayerSpec("dropout", rate=rate)


FLATTEN = LayerSpec("flatten")
RELU = LayerSpec("relu")
BATCHNORM = LayerSpec("batchnorm")
