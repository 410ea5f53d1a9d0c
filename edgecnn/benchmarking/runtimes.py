"""Benchmarking a model in a runtime other than ONNX Runtime (OpenVINO, LiteRT; runtime.backends): the
model opened through the runtime interface, presented to the same measuring code as an ORT session, so
it is timed by the same harness, in the same interleaved rounds, on the same inputs as ORT's models.

The timed call is the backend's `runner(batch)`: inputs bound once, each call the inference alone (as
ORT's IOBinding path)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecnn.core.metadata import ModelMetadata
from edgecnn.runtime.backends.base import OpenedModel
from edgecnn.runtime.backends.registry import open_model_file
from edgecnn.runtime.session_config import SessionConfig


@dataclass(frozen=True)
class _Arg:
    """An input or output as ORT's NodeArg describes it (what feeds.make_feeds reads)."""

    name: str
    shape: tuple[int | str, ...]
    type: str = "tensor(float)"


class BackendSession:
    """The few ORT session methods bench's measuring code uses, answered by an opened model."""

    def __init__(self, model: OpenedModel) -> None:
        self.model = model

    def get_inputs(self) -> list[_Arg]:
        return [_Arg(self.model.input_name, _with_batch_symbol(self.model.input_shape))]

    def get_outputs(self) -> list[_Arg]:
        return [_Arg(self.model.output_name, _with_batch_symbol(self.model.output_shape))]

    def get_providers(self) -> list[str]:
        return [self.model.device]


def _with_batch_symbol(shape: tuple[int | None, ...]) -> tuple[int | str, ...]:
    return tuple("batch" if d is None else d for d in shape)


@dataclass(frozen=True)
class OpenedInRuntime:
    model: OpenedModel
    meta: ModelMetadata | None
    session_create_ns: int  # open + the backend's own first run on zeros


def open_in_runtime(path: Path, config: SessionConfig) -> OpenedInRuntime:
    t0 = time.perf_counter_ns()
    model = open_model_file(path, config)
    create_ns = time.perf_counter_ns() - t0
    return OpenedInRuntime(model, ModelMetadata.from_props(model.metadata), create_ns)


def runtime_record(model: OpenedModel) -> dict[str, Any]:
    """What bench.json records per model about the runtime that ran it."""
    return {
        "runtime": model.runtime,
        "runtime_version": model.runtime_version,
        "device": model.device,
        "precision": model.precision,
        "threads": model.threads,
    }
