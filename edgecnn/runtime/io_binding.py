"""Inputs and outputs bound to a session once (IOBinding), so a timed or repeated call does no host
allocation and, on CUDA/TensorRT, no host<->device copies; it is also what CUDA graphs need (fixed
addresses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.runtime.ort_library import import_ort
from edgecnn.runtime.providers import ort_device
from edgecnn.runtime.shapes import numpy_dtype, resolve_shape


@dataclass
class BoundIO:
    """One session with its inputs and outputs bound once; `run()` is the whole per-call cost."""

    session: Any
    binding: Any
    device: str
    inputs: dict[str, Any]  # OrtValues kept alive as long as the binding uses their memory
    outputs: dict[str, Any]  # pre-allocated output OrtValues (empty where ORT allocates per run)
    run_options: Any = None

    def run(self) -> None:
        # Session.Run synchronizes the device stream before returning (ORT's default), so a host timer
        # around this call measures the finished GPU work too.
        self.session.run_with_iobinding(self.binding, self.run_options)

    def output_arrays(self) -> list[np.ndarray]:
        """The outputs of the last run, copied to host memory (not for timed loops)."""
        return list(self.binding.copy_outputs_to_cpu())


def run_options(graph_id: int | None = None) -> Any:
    """RunOptions naming the CUDA graph a run captures/replays. ORT keeps one graph per id and replays
    it on the buffers it was captured with, so each input shape needs its own id (>= 1; 0 is ORT's
    internal default); -1 runs without capturing, for plain `session.run` calls on a graph session."""
    ort = import_ort()
    options = ort.RunOptions()
    if graph_id is not None:
        if graph_id == 0 or graph_id < -1:
            raise EdgecnnError("CUDA graph ids are >= 1 (or -1 for no graph)")
        options.add_run_config_entry("gpu_graph_id", str(graph_id))
    return options


def bind_io(
    session: Any, provider: str, feeds: dict[str, np.ndarray], device_id: int = 0, graph_id: int | None = None
) -> BoundIO:
    """Put `feeds` on the provider's device once and bind them; pre-allocate outputs there when their
    shapes follow from the batch size, so repeated runs allocate nothing (CUDA graphs require that).

    On CPU the input OrtValues share the (contiguous) host arrays' memory and keep them alive; on
    CUDA/TensorRT they are device copies made here, outside any timed loop.

    `graph_id` (CUDA graphs only): one id per distinct binding, see `run_options`."""
    ort = import_ort()
    device = ort_device(provider)
    binding = session.io_binding()
    inputs: dict[str, Any] = {}
    batch = None
    batch_symbols: set[str] = set()
    for arg in session.get_inputs():
        if arg.name not in feeds:
            raise EdgecnnError(f"no data for model input {arg.name!r}")
        array = np.ascontiguousarray(feeds[arg.name])
        value = ort.OrtValue.ortvalue_from_numpy(array, device, device_id)
        binding.bind_ortvalue_input(arg.name, value)
        inputs[arg.name] = value
        if arg.shape and array.ndim:
            batch = array.shape[0] if batch is None else batch
            if isinstance(arg.shape[0], str):
                batch_symbols.add(arg.shape[0])
    outputs: dict[str, Any] = {}
    for arg in session.get_outputs():
        shape = resolve_shape(arg.shape, batch or 1, batch_symbols)
        if shape is None and graph_id is not None:
            raise EdgecnnError(
                f"output {arg.name!r} has shape {list(arg.shape)}: CUDA graphs need outputs whose shape "
                "follows from the batch size; run without --cuda-graphs"
            )
        if shape is None:
            binding.bind_output(arg.name, device, device_id)  # ORT allocates; shape known only at run time
            continue
        dtype = numpy_dtype(arg.type)
        value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, device, device_id)
        binding.bind_ortvalue_output(arg.name, value)
        outputs[arg.name] = value
    return BoundIO(
        session=session,
        binding=binding,
        device=device,
        inputs=inputs,
        outputs=outputs,
        run_options=run_options(graph_id) if graph_id is not None else None,
    )
