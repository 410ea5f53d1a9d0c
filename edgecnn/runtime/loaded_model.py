"""An image classifier (.onnx or .tflite) opened for inference by its runtime (runtime.backends) plus
the input contract (layout, size, normalization, labels) read from edgecnn's metadata, or inferred from
the graph and said so.

Shared by predict and eval; runtime side (numpy + the runtime; never TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.metadata import ModelMetadata, Normalization
from edgecnn.runtime.backends.base import OpenedModel
from edgecnn.runtime.backends.registry import for_file, open_model_file
from edgecnn.runtime.device_record import refuse_session_override, resolve_model
from edgecnn.runtime.session_config import SessionConfig
from edgecnn.runtime.trt_session import inference_session

# What eval/predict results record about the runtime that ran the model (OpenedModel.describe()).
RUNTIME_KEYS = ("runtime", "runtime_version", "device", "precision", "threads")


@dataclass(frozen=True)
class LoadedModel:
    """An opened model plus everything needed to feed it: from metadata, or inferred and said so."""

    path: Path
    session: OpenedModel  # run(batch) -> scores, whichever runtime opened it
    provider: str  # what really runs (ORT's provider, "openvino:CPU", "litert:XNNPACK")
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
            "output_kind": self.meta.output,
            "in_model_preprocessing": self.meta.in_model_preprocessing,
            "size_bytes": self.path.stat().st_size,
            **self.session.describe(),  # runtime, version, device, precision, threads, placement
        }


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def infer_metadata(shape: list[Any], path: Path) -> tuple[ModelMetadata, list[str]]:
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


def load_model(
    path: str | Path, session_config: SessionConfig, batch_size: int = 1, allow_cpu_nodes: bool = False
) -> LoadedModel:
    """Open `path` and work out its input contract; refuse models that are not image classifiers.

    A bundle directory opens the file (and thread count, unless one was given) that `edgecnn tune`
    picked on this device for the tuned batch size nearest `batch_size`, and says so in assumptions.
    The runtime opens it checked (runtime.backends): one run on a batch of zeros, and where its ops ran
    recorded in its placement (for ORT: fallback off, per-node providers). On TensorRT the session is
    tuned for `batch_size` with its engine cached (runtime.trt_session)."""
    path, picked = Path(path), []
    if path.is_dir():
        if session_config.device != "cpu":
            raise EdgecnnError(
                f"{path} is a bundle: its device pick is for the CPU; pass one of its .onnx files for "
                f"--device {session_config.device}"
            )
        refuse_session_override(path, session_config.runtime, session_config.precision)
        path, threads, picked, pick = resolve_model(path, batch_size, session_config.threads)
        # The pick runs in the runtime (and precision hint) tune timed it in.
        assert pick is not None
        session_config = replace(
            session_config, threads=threads, runtime=pick.runtime, precision=pick.precision
        )
    loaded = _load_file(path, session_config, batch_size, allow_cpu_nodes)
    return replace(loaded, assumptions=(*picked, *loaded.assumptions)) if picked else loaded


def _load_file(
    path: Path, session_config: SessionConfig, batch_size: int, allow_cpu_nodes: bool
) -> LoadedModel:
    # On TensorRT: the profile for this batch size, the engine cache, the INT8 file check.
    session_config = inference_session(path, for_file(session_config, path), batch_size)
    opened = open_model_file(path, session_config, allow_cpu_nodes=allow_cpu_nodes)
    meta = ModelMetadata.from_props(opened.metadata)
    assumptions: list[str] = []
    if meta is None:
        meta, assumptions = infer_metadata(list(opened.input_shape), path)
        has_metadata = False
    else:
        has_metadata = True
        graph_dims = list(opened.input_shape[1:])
        expected = list(meta.graph_input_shape)
        if len(graph_dims) != 3 or any(
            g is not None and g != e for g, e in zip(graph_dims, expected, strict=True)
        ):
            raise EdgecnnError(
                f"{path}: metadata says input {expected} ({meta.layout}) but the graph takes "
                f"{list(opened.input_shape)}; re-export the model"
            )
    out_dims = list(opened.output_shape)
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
        session=opened,
        provider=opened.device,
        meta=meta,
        has_metadata=has_metadata,
        input_name=opened.input_name,
        output_name=opened.output_name,
        num_classes=num_classes,
        assumptions=tuple(assumptions),
    )
