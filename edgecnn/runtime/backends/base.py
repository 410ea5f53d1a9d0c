"""The runtime interface: a `Backend` opens a model file into an `OpenedModel` (run a batch, where its
ops ran, what precision and version ran it). eval, predict and bench talk to this, never to a runtime's
own API, so adding a runtime is one module here plus one line in registry.BACKENDS.

Every backend but ONNX Runtime is an optional extra; `missing()` is the one line that names it."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.session_config import RUNTIMES, SessionConfig

__all__ = ["RUNTIMES", "Backend", "OpenedModel", "RuntimeMissing"]


class RuntimeMissing(EdgecnnError):
    """A runtime whose package is not installed: the message is the one line naming the extra."""


class OpenedModel(ABC):
    """One model file opened by one runtime, ready to run batches of prepared (float32) images."""

    runtime: str  # "ort" | "openvino" | "litert"
    runtime_version: str
    device: str  # what really runs: "CPUExecutionProvider", "openvino:CPU", "litert:XNNPACK", ...
    # The precision actually applied, in SessionConfig's terms (OpenVINO's hint: fp32 | bf16 | fp16;
    # TensorRT's: fp32 | fp16 | int8); None: the runtime ran the file at its own precision.
    precision: str | None
    metadata: dict[str, str]  # edgecnn.* model metadata (ONNX metadata_props or the .tflite's metadata)
    input_name: str
    input_shape: tuple[int | None, ...]  # batch (and any dynamic) dimension None
    output_name: str
    output_shape: tuple[int | None, ...]
    threads: int  # the thread count asked for (0 = the runtime's default)

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """The first output for `batch` (already prepared for the graph), as float32."""

    def runner(self, batch: np.ndarray) -> Callable[[], Any]:
        """The call a benchmark times: `batch` bound to the model's input once, so each call is the
        inference alone (no input copies where the runtime allows). Default: `run(batch)`."""
        return lambda: self.run(batch)

    @abstractmethod
    def placement(self) -> dict[str, Any]:
        """Where the model's ops really ran, in this runtime's own terms (always has `summary`)."""

    def close(self) -> None:  # noqa: B027 - runtimes without resources to free keep the default
        """Free the runtime's resources (sessions are otherwise freed with the object)."""

    def describe(self) -> dict[str, Any]:
        """What results record about the runtime that ran a model."""
        return {
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "device": self.device,
            "precision": self.precision,
            "threads": self.threads,
            "placement": self.placement(),
        }


class Backend(ABC):
    """One runtime: how to tell it is installed, what it sees, and how it opens a file."""

    name: str  # "ort" | "openvino" | "litert"
    title: str  # how people write it: "ONNX Runtime", "OpenVINO", "LiteRT"
    module: str  # the Python module that proves it is installed
    extra: str | None  # the pip extra that installs it (None: in the base install)
    file_suffixes: tuple[str, ...]  # the model files it opens

    def missing(self) -> str | None:
        """None when the runtime imports; otherwise the one line that says how to install it."""
        try:
            importlib.import_module(self.module)
        except ImportError:
            how = f"pip install 'edgecnn[{self.extra}]'" if self.extra else "pip install edgecnn"
            return f"{self.title} is not installed: {how}"
        return None

    def require(self) -> None:
        why = self.missing()
        if why:
            raise RuntimeMissing(why)

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def devices(self) -> list[str]:
        """The devices this runtime sees here, in its own names."""

    @abstractmethod
    def open(self, path: Path, config: SessionConfig, *, allow_cpu_nodes: bool = False) -> OpenedModel:
        """Open `path` as `config` asks, run it once on zeros (so a broken file or a device that does
        not work fails here, in one line) and return it ready to run. `allow_cpu_nodes`: on a GPU
        device, accept ops the runtime ran on the CPU (runtimes that only run on the CPU ignore it)."""


def static_dims(shape: Any) -> tuple[int | None, ...]:
    """A runtime's shape with every dynamic dimension (strings, -1, 0, None) as None."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape)


def zeros_for(shape: tuple[int | None, ...], batch: int = 1) -> np.ndarray:
    if any(d is None for d in shape[1:]):
        raise EdgecnnError(f"the model's input shape {list(shape)} has dynamic dimensions beyond the batch")
    return np.zeros((batch, *shape[1:]), dtype=np.float32)  # type: ignore[misc]
