"""The contract between `export` and the runtime side: what an edgecnn ONNX file says about itself.

Everything `predict`, `eval` and `bench` need (labels, input shape, layout, normalization, dataset)
lives in the model's `metadata_props`, so a bundle file works on its own with no side files.
Only `onnx` (a base dependency) is needed to read it; TensorFlow never.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError

PREFIX = "edgecnn."
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
# A model that ends without softmax: its graph output is named for what it is (the output kind).
LOGITS_NAME = "logits"
OUTPUT_KINDS = (OUTPUT_NAME, LOGITS_NAME)
LAYOUTS = ("NHWC", "NCHW")


@dataclass(frozen=True)
class Normalization:
    """x_float = (x_uint8 * scale - mean[c]) / std[c], applied per channel."""

    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise EdgecnnError("normalization mean and std must have the same length")
        if any(s == 0 for s in self.std):
            raise EdgecnnError("normalization std must not contain zeros")

    @property
    def is_raw(self) -> bool:
        """The graph takes the 0-255 pixel values unchanged (the model normalizes them itself)."""
        return self.scale == 1.0 and all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)

    def apply(self, images: Any) -> Any:
        """uint8 (N, H, W, C) -> float32 (N, H, W, C)."""
        import numpy as np

        x = images.astype(np.float32) * np.float32(self.scale)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if np.any(mean != 0) or np.any(std != 1):
            x = (x - mean) / std
        return x

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        return cls(scale=float(d["scale"]), mean=tuple(d["mean"]), std=tuple(d["std"]))


@dataclass(frozen=True)
class ModelMetadata:
    """What an edgecnn export records inside the .onnx file."""

    input_shape: tuple[int, int, int]  # per image, always (H, W, C) regardless of layout
    layout: str = "NHWC"  # how the graph input is laid out
    class_labels: tuple[str, ...] = ()
    normalization: Normalization = field(default_factory=Normalization)
    dataset: str | None = None
    model_name: str | None = None
    variant: str = "fp32"  # fp32 | fp16 | int8 | dynamic | ...
    source_sha256: str | None = None
    export_route: str | None = None
    macs_per_image: int | None = None
    edgecnn_version: str | None = None
    # "probabilities" (softmax inside the graph) or "logits"; None: a file from before edgecnn recorded it.
    output: str | None = None
    # The model's own preprocessing layers, e.g. "Rescaling(scale=0.003922)": then the graph takes raw
    # 0-255 pixels (normalization is the identity). None: the caller normalizes.
    in_model_preprocessing: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise EdgecnnError(f"layout must be one of {', '.join(LAYOUTS)}, not {self.layout!r}")
        if self.output is not None and self.output not in OUTPUT_KINDS:
            raise EdgecnnError(f"output must be one of {', '.join(OUTPUT_KINDS)}, not {self.output!r}")

    @property
    def graph_input_shape(self) -> tuple[int, int, int]:
        h, w, c = self.input_shape
        return (c, h, w) if self.layout == "NCHW" else (h, w, c)

    def to_props(self) -> dict[str, str]:
        props = {
            "input_shape": json.dumps(list(self.input_shape)),
            "layout": self.layout,
            "class_labels": json.dumps(list(self.class_labels)),
            "normalization": json.dumps(self.normalization.to_dict()),
            "variant": self.variant,
        }
        optional = {
            "dataset": self.dataset,
            "model_name": self.model_name,
            "source_sha256": self.source_sha256,
            "export_route": self.export_route,
            "macs_per_image": None if self.macs_per_image is None else str(self.macs_per_image),
            "version": self.edgecnn_version,
            "output": self.output,
            "in_model_preprocessing": self.in_model_preprocessing,
        }
        props.update({k: v for k, v in optional.items() if v is not None})
        props.update(self.extra)
        return {PREFIX + k: v for k, v in props.items()}

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMetadata | None:
        """Parse edgecnn's metadata; None when the model was not exported by edgecnn. Every value is
        checked like an option (types, counts, channels); an error names the metadata key."""
        ours = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if "input_shape" not in ours:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        shape = _meta_value(ours, "input_shape", _parse_shape)
        labels = _meta_value(ours, "class_labels", _parse_labels, ())
        norm = _meta_value(ours, "normalization", _parse_normalization, Normalization())
        if len(norm.mean) not in (1, shape[2]):
            raise _malformed(
                "normalization", f"{len(norm.mean)} mean/std values for a model with {shape[2]} channel(s)"
            )
        macs = _meta_value(ours, "macs_per_image", _parse_count, None)
        try:
            return cls(
                input_shape=shape,
                layout=ours.get("layout", "NHWC"),
                class_labels=labels,
                normalization=norm,
                dataset=ours.get("dataset"),
                model_name=ours.get("model_name"),
                variant=ours.get("variant", "fp32"),
                source_sha256=ours.get("source_sha256"),
                export_route=ours.get("export_route"),
                macs_per_image=macs,
                edgecnn_version=ours.get("version"),
                output=ours.get("output"),
                in_model_preprocessing=ours.get("in_model_preprocessing"),
                extra={
                    k: v
                    for k, v in ours.items()
                    if k not in known and k not in ("version", "input_shape", "normalization")
                },
            )
        except EdgecnnError as exc:
            raise EdgecnnError(f"model metadata is malformed: {exc}; re-export the model") from None


def _malformed(key: str, why: str) -> EdgecnnError:
    return EdgecnnError(f"model metadata {PREFIX}{key} is malformed ({why}); re-export the model")


def _meta_value(ours: dict[str, str], key: str, parse: Any, default: Any = ...) -> Any:
    """`parse(json value of key)`, or `default` when absent; any error names the key."""
    if key not in ours:
        if default is ...:
            raise _malformed(key, "missing")
        return default
    try:
        raw = ours[key] if parse is _parse_count else json.loads(ours[key])
        return parse(raw)
    except (ValueError, TypeError, KeyError, EdgecnnError) as exc:
        raise _malformed(key, str(exc) or type(exc).__name__) from None


def _parse_shape(raw: Any) -> tuple[int, int, int]:
    if not isinstance(raw, list) or len(raw) != 3 or not all(type(v) is int and v > 0 for v in raw):
        raise ValueError(f"expected [height, width, channels] of positive integers, got {raw!r}"[:160])
    return (raw[0], raw[1], raw[2])


def _parse_labels(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise ValueError("expected a list of strings")
    repeated = sorted({v for v in raw if raw.count(v) > 1})
    if repeated:
        # Identical labels make every answer look right ("all labels '0'": 10/10 correct).
        raise ValueError(f"labels repeat ({', '.join(map(repr, repeated[:3]))}): every class needs its own")
    return tuple(raw)


def _parse_normalization(raw: Any) -> Normalization:
    if not isinstance(raw, dict):
        raise ValueError("expected an object with scale, mean and std")
    numbers = [raw.get("scale"), *(raw.get("mean") or [None]), *(raw.get("std") or [None])]
    if not isinstance(raw.get("mean"), list) or not isinstance(raw.get("std"), list):
        raise ValueError("mean and std must be lists of numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v == v for v in numbers):
        raise ValueError("scale, mean and std must be numbers")
    return Normalization.from_dict(raw)


def _parse_count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def write_metadata(model: Any, meta: ModelMetadata) -> Any:
    """Set edgecnn's metadata_props on an onnx.ModelProto (in place; returns it)."""
    props = meta.to_props()
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model


def load_onnx(path: str | Path) -> Any:
    """The onnx.ModelProto of a model file (weights in external files are not loaded), after the file
    argument check; a garbage or truncated file is one line, not onnx's DecodeError."""
    import onnx

    from edgecnn.core.input_files import check_input_file, show_path

    check_input_file(path, "model file")
    try:
        with open(path, "rb") as fh:  # bytes: a file name that is not UTF-8 works too
            return onnx.load_model_from_string(fh.read())
    except Exception as exc:  # noqa: BLE001 - onnx raises many types for garbage input
        raise EdgecnnError(
            f"{show_path(path)} is not a readable ONNX model (it does not parse: {type(exc).__name__})"
        ) from None


def onnx_props(path: str | Path) -> dict[str, str]:
    """The `edgecnn.*` metadata_props of an .onnx file, read through load_onnx's checks: the one reader
    for runtimes that do not expose them (OpenVINO) and for read_metadata."""
    return {p.key: p.value for p in load_onnx(path).metadata_props if p.key.startswith(PREFIX)}


def read_metadata(source: Any) -> ModelMetadata | None:
    """Metadata from a path, an onnx.ModelProto or an onnxruntime.InferenceSession."""
    if isinstance(source, (str, Path)):
        props = onnx_props(source)
    elif hasattr(source, "get_modelmeta"):  # onnxruntime.InferenceSession
        props = dict(source.get_modelmeta().custom_metadata_map)
    else:
        props = {p.key: p.value for p in source.metadata_props}
    return ModelMetadata.from_props(props)
