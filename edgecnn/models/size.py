"""Model size without TensorFlow: per-layer output shapes, parameters and MACs from the layer list.

This is also the shape check a `ModelSpec` runs on construction (windows that do not fit, a dense on a
spatial input), so `edgecnn models` and spec validation never need Keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from edgecnn.core.errors import EdgecnnError
from edgecnn.models.layers import HEAD_NAME, LayerSpec


class SizedModel(Protocol):
    """What the size walk reads from a model; `ModelSpec` has it (typed structurally so `spec.py` can
    validate through this module without the two importing each other)."""

    @property
    def input_shape(self) -> tuple[int, int, int]: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def layers(self) -> tuple[LayerSpec, ...]: ...


@dataclass(frozen=True)
class LayerInfo:
    name: str  # the Keras layer name build_keras_model gives it
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def _out_size(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def layer_table(spec: SizedModel) -> list[LayerInfo]:
    """Per-layer output shape, parameters and MACs (conv and dense multiply-accumulates), head included.

    Parameter counts follow Keras exactly (BatchNorm counts its 4 vectors, as `count_params` does).
    """
    h, w, c = spec.input_shape
    flat: int | None = None
    rows: list[LayerInfo] = []
    counters: dict[str, int] = {}
    for i, layer in enumerate(spec.layers, start=1):
        counters[layer.kind] = counters.get(layer.kind, 0) + 1
        name = f"{layer.kind}{counters[layer.kind]}"
        where = f"layer {i} ({layer.kind})"
        params = macs = 0
        if layer.kind in ("conv", "pool"):
            if flat is not None:
                raise EdgecnnError(f"{where} needs a spatial input but comes after flatten/gap")
            kh, kw = layer.window
            sh, sw = layer.strides
            oh, ow = _out_size(h, kh, sh, layer.padding), _out_size(w, kw, sw, layer.padding)
            if oh < 1 or ow < 1:
                raise EdgecnnError(
                    f"{where}: a {kh}x{kw} window does not fit the {h}x{w} input; "
                    "use padding 'same' or fewer pooling layers"
                )
            if layer.kind == "conv":
                assert layer.filters is not None
                params = kh * kw * c * layer.filters + (layer.filters if layer.use_bias else 0)
                macs = oh * ow * layer.filters * kh * kw * c
                c = layer.filters
            h, w = oh, ow
        elif layer.kind == "batchnorm":
            params = 4 * (flat if flat is not None else c)
        elif layer.kind == "flatten":
            if flat is None:
                flat = h * w * c
        elif layer.kind == "gap":
            if flat is not None:
                raise EdgecnnError(f"{where} needs a spatial input but comes after flatten/gap")
            flat = c
        elif layer.kind == "dense":
            if flat is None:
                raise EdgecnnError(f"{where} needs a flat input; add a flatten layer before it")
            assert layer.units is not None
            params = flat * layer.units + (layer.units if layer.use_bias else 0)
            macs = flat * layer.units
            flat = layer.units
        shape = (flat,) if flat is not None else (h, w, c)
        rows.append(LayerInfo(name, layer.kind, shape, params, macs))
    if flat is None:
        raise EdgecnnError(
            "the last layer must be flat before the classifier; end with flatten, gap or dense"
        )
    rows.append(
        LayerInfo(
            HEAD_NAME,
            "dense",
            (spec.num_classes,),
            flat * spec.num_classes + spec.num_classes,
            flat * spec.num_classes,
        )
    )
    return rows


def params_and_macs(spec: SizedModel) -> tuple[int, int]:
    """(parameters, multiply-accumulates per image), computed from the layer list without TensorFlow."""
    rows = layer_table(spec)
    return sum(r.params for r in rows), sum(r.macs for r in rows)
