"""Which execution provider really ran each node of an ONNX Runtime session.

`session.get_providers()` lists the providers a session *registered*, not where its nodes ran: a
TensorRT session may hand most nodes to CUDA, and a CUDA session runs ConvInteger on the CPU. ORT's
profiler records, for every node it executes, the provider whose kernel ran it (`args.provider` of
each `<node>_kernel_time` event). That is the truth this module reads:

    with temporary_profile_prefix() as prefix:
        options.enable_profiling = True
        options.profile_file_prefix = prefix
        session = InferenceSession(model, options, providers, enable_fallback=0)
        session.run(None, feeds)                  # one ordinary (warmup) run
        placement = placement_from_session(session)

`placement_from_session` ends profiling, so later (timed) runs of the same session are not profiled
and pay nothing. The first run is always an ordinary one, even with CUDA graphs (ORT captures from
the second run on), so its events cover every node.

What is counted: the nodes of the graph ORT executes, after its graph optimizations and after the
TensorRT EP fused what it takes into engines. A TensorRT engine is one node (op type `TRTKernel`)
standing for many ONNX nodes; the CUDA and CPU EPs run nodes one by one.

CPU shape ops: ORT deliberately places small shape computations (Shape -> Gather -> Unsqueeze ->
Concat feeding a Reshape) on the CPU even in a GPU session, because their int64 results are needed
on the host. They move a handful of integers, not activations, so `check_placement` accepts them on
a GPU device, and `Placement.summary()` names them rather than hiding them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file
from edgecnn.core.scratch import scratch_dir
from edgecnn.core.text import one_line
from edgecnn.runtime.providers import PROVIDER_FOR_DEVICE
from edgecnn.runtime.session_config import ORT_OPTIMIZATION_LEVELS

CPU_PROVIDER = "CPUExecutionProvider"
# Summary order: the accelerator first, CPU last, anything else (DML, CoreML...) in between.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
METHOD = "onnxruntime profiler (args.provider of each node's kernel_time event, first run)"

# Op types that do shape arithmetic when their outputs are small integer tensors.
SHAPE_OP_TYPES = frozenset(
    {
        "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Slice", "Cast",
        "Range", "Add", "Sub", "Mul", "Div", "Equal", "Where", "Min", "Max", "ReduceProd",
    }
)  # fmt: skip
SHAPE_DTYPES = frozenset({"int64", "int32"})
# A shape tensor has one element per dimension; anything longer is data, not a shape.
MAX_SHAPE_ELEMENTS = 16
TRT_ENGINE_OP = "TRTKernel"
# The nodes that carry the arithmetic: what "TensorRT took most of the model" is counted in.
COMPUTE_OP_TYPES = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm",
                              "FusedMatMul", "NhwcConv", "QLinearConv", "QGemm", "ConvInteger",
                              "MatMulInteger", "QLinearMatMul"})  # fmt: skip
TRT_PROVIDER = PROVIDER_FOR_DEVICE["tensorrt"]


@dataclass(frozen=True)
class NodeRun:
    """One node as the profiler saw it run."""

    name: str
    op_type: str
    provider: str
    output_dtypes: tuple[str, ...]
    output_elements: int

    @property
    def is_shape_op(self) -> bool:
        return (
            self.op_type in SHAPE_OP_TYPES
            and bool(self.output_dtypes)
            and all(dtype in SHAPE_DTYPES for dtype in self.output_dtypes)
            and self.output_elements <= MAX_SHAPE_ELEMENTS
        )


@dataclass(frozen=True)
class Placement:
    """Where the nodes of one session ran, counted per provider."""

    nodes_total: int
    by_provider: dict[str, int]
    by_provider_ops: dict[str, tuple[str, ...]]  # sorted op types per provider
    cpu_shape_ops: tuple[str, ...]  # names of CPU nodes that only compute shapes
    method: str = METHOD
    # Compute nodes (COMPUTE_OP_TYPES) that ran one by one, per provider; an engine (TRTKernel) is not one.
    compute_by_provider: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.nodes_total != sum(self.by_provider.values()):
            raise EdgecnnError("placement counts do not add up to the node total")

    @property
    def providers(self) -> tuple[str, ...]:
        """Providers that ran at least one node: the accelerator first, CPU last."""

        def rank(provider: str) -> tuple[int, int]:
            if provider in PROVIDER_ORDER:
                return (PROVIDER_ORDER.index(provider), 0)
            return (len(PROVIDER_ORDER) + (provider == CPU_PROVIDER), -self.by_provider[provider])

        return tuple(sorted(self.by_provider, key=rank))

    @property
    def cpu_nodes_beyond_shape_ops(self) -> int:
        return self.by_provider.get(CPU_PROVIDER, 0) - len(self.cpu_shape_ops)

    def fraction_on(self, provider: str) -> float:
        return self.by_provider.get(provider, 0) / self.nodes_total if self.nodes_total else 0.0

    def engine_compute_share(self, provider: str, model_compute_nodes: int) -> float | None:
        """The share of the model's compute nodes that `provider` took: an engine provider (TensorRT)
        fuses what it takes into a few engine nodes, so its share is what did *not* run elsewhere one by
        one. None when the model has no compute node."""
        if model_compute_nodes <= 0:
            return None
        elsewhere = sum(n for p, n in self.compute_by_provider.items() if p != provider)
        return max(0.0, 1.0 - elsewhere / model_compute_nodes)

    def summary(self) -> str:
        """ "5 of 8 nodes on CUDAExecutionProvider, 3 on CPUExecutionProvider (Concat, Gather, Shape;
        shape ops: ...)": op types are named for every provider but the main one."""
        parts = []
        for i, provider in enumerate(self.providers):
            count = self.by_provider[provider]
            head = (
                f"{count} of {self.nodes_total} nodes on {provider}" if i == 0 else f"{count} on {provider}"
            )
            details = [] if i == 0 else [", ".join(self.by_provider_ops[provider])]
            if provider == CPU_PROVIDER and self.cpu_shape_ops and i > 0:
                details.append("shape ops: " + ", ".join(self.cpu_shape_ops))
            parts.append(head + (f" ({'; '.join(details)})" if details else ""))
        return ", ".join(parts) if parts else "no nodes ran"

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes_total": self.nodes_total,
            "by_provider": {p: self.by_provider[p] for p in self.providers},
            "by_provider_ops": {p: list(self.by_provider_ops[p]) for p in self.providers},
            "cpu_shape_ops": list(self.cpu_shape_ops),
            "compute_by_provider": dict(self.compute_by_provider),
            "summary": self.summary(),
            "method": self.method,
        }


def _node_run(event: Mapping[str, Any]) -> NodeRun | None:
    """The node behind one profiler event, or None for fences, session events and the like."""
    args = event.get("args") or {}
    if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
        return None
    if "provider" not in args:
        return None
    op_type = str(args.get("op_name", "?"))
    if op_type.startswith(TRT_ENGINE_OP + "_"):  # "TRTKernel_graph_<model>_<hash>_<n>": one engine
        op_type = TRT_ENGINE_OP
    dtypes: list[str] = []
    elements = 0
    for output in args.get("output_type_shape") or []:
        for dtype, shape in dict(output).items():
            dtypes.append(str(dtype))
            elements += int(np.prod(shape)) if shape else 1
    name = str(event["name"])[: -len("_kernel_time")]
    return NodeRun(name, op_type, str(args["provider"]), tuple(dtypes), elements)


def placement_from_events(events: Sequence[Mapping[str, Any]]) -> Placement:
    """Count the nodes of a profile (a list of Chrome-trace events); each node once, however many runs."""
    nodes: dict[str, NodeRun] = {}
    for event in events:
        node = _node_run(event)
        if node is not None:
            nodes.setdefault(node.name, node)
    if not nodes:
        raise EdgecnnError("the ONNX Runtime profile holds no node events: did the session run once?")
    by_provider: dict[str, int] = {}
    ops: dict[str, set[str]] = {}
    for node in nodes.values():
        by_provider[node.provider] = by_provider.get(node.provider, 0) + 1
        ops.setdefault(node.provider, set()).add(node.op_type)
    shape_ops = tuple(n.name for n in nodes.values() if n.provider == CPU_PROVIDER and n.is_shape_op)
    compute: dict[str, int] = {}
    for node in nodes.values():
        if node.op_type in COMPUTE_OP_TYPES:
            compute[node.provider] = compute.get(node.provider, 0) + 1
    return Placement(
        nodes_total=len(nodes),
        by_provider=by_provider,
        by_provider_ops={p: tuple(sorted(o)) for p, o in ops.items()},
        cpu_shape_ops=shape_ops,
        compute_by_provider=compute,
    )


def placement_from_profile(path: Path) -> Placement:
    try:
        events = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise EdgecnnError(f"cannot read the ONNX Runtime profile {path}: {one_line(exc)}") from None
    except ValueError:
        # ORT writes the profile itself and says nothing when the write fails half-way: a cut-off
        # file means the temp directory ran out of space (or quota).
        raise EdgecnnError(
            f"ONNX Runtime could not finish writing its profile {path} (is the temp directory "
            f"{Path(path).parent.parent} full?); free space there or point TMPDIR elsewhere"
        ) from None
    if isinstance(events, dict):  # some ORT versions wrap the events: {"traceEvents": [...]}
        events = events.get("traceEvents", [])
    return placement_from_events(events)


@contextlib.contextmanager
def temporary_profile_prefix() -> Iterator[str]:
    """A `SessionOptions.profile_file_prefix` in a private temp dir that is removed afterwards, so
    placement leaves no profile files behind (ORT writes to the working directory by default)."""
    with scratch_dir("placement") as folder:  # pid-tagged: swept if this process is killed
        yield str(folder / "placement")


def placement_from_session(session: Any) -> Placement:
    """End profiling of `session` (created with profiling on, run at least once) and read its placement.

    Later runs of the session are no longer profiled; the profile file is deleted."""
    profile = session.end_profiling()
    if not profile:
        raise EdgecnnError("the session was not created with profiling enabled; placement is unknown")
    try:
        return placement_from_profile(Path(profile))
    finally:
        Path(profile).unlink(missing_ok=True)


def check_placement(
    placement: Placement,
    requested_device: str,
    allow_cpu_nodes: bool = False,
    *,
    model_compute_nodes: int = 0,
    trt_min_compute_share: float = 0.5,
) -> None:
    """Raise a one-line EdgecnnError when a GPU device was requested and the nodes did not run there.

    Refused: no node at all on the requested provider (ORT fell back), or any CPU node that is not a
    shape op, unless `allow_cpu_nodes`. Accepted: CPU shape ops (see the module docstring) and, for
    `tensorrt`, nodes TensorRT declined that ran on CUDA (still the GPU; the summary names them), as long
    as TensorRT took at least `trt_min_compute_share` of the model's `model_compute_nodes` (Conv/Gemm/
    MatMul in the file): a run where TensorRT built an engine for a Flatten and CUDA did the rest is
    not a TensorRT result."""
    if requested_device == "cpu":
        return
    provider = PROVIDER_FOR_DEVICE.get(requested_device)
    if provider is None:
        raise EdgecnnError(
            f"unknown device {requested_device!r} for a placement check; use cpu, cuda or tensorrt"
        )
    if placement.by_provider.get(provider, 0) == 0:
        raise EdgecnnError(
            f"device {requested_device!r} was requested but no node ran on {provider}: {placement.summary()}"
        )
    share = placement.engine_compute_share(provider, model_compute_nodes)
    if provider == TRT_PROVIDER and share is not None and share < trt_min_compute_share:
        raise EdgecnnError(
            f"device 'tensorrt' was requested but TensorRT took {share:.0%} of the {model_compute_nodes} "
            f"compute nodes (needs {trt_min_compute_share:.0%}): {placement.summary()}"
        )
    extra = placement.cpu_nodes_beyond_shape_ops
    if extra > 0 and not allow_cpu_nodes:
        cpu_ops = placement.by_provider_ops.get(CPU_PROVIDER, ())
        raise EdgecnnError(
            f"device {requested_device!r} was requested but {extra} of {placement.nodes_total} nodes ran "
            f"on {CPU_PROVIDER} ({', '.join(cpu_ops)}); pass --allow-cpu-nodes to accept that"
        )


@dataclass(frozen=True)
class PlacementConfig:
    """A standalone placement probe: open `model` on `providers`, run one batch of zeros, count."""

    model: Path | bytes
    providers: tuple[Any, ...] = (CPU_PROVIDER,)  # names or (name, options) pairs, as ORT takes them
    batch: int = 1
    graph_optimization: str = "all"
    extra: dict[str, str] = field(default_factory=dict)  # session config entries

    def __post_init__(self) -> None:
        if not self.providers:
            raise EdgecnnError("placement needs at least one execution provider")
        if self.batch < 1:
            raise EdgecnnError("placement batch must be >= 1")
        if self.graph_optimization not in ORT_OPTIMIZATION_LEVELS:
            raise EdgecnnError("graph optimization must be one of disable, basic, extended, all")
        if isinstance(self.model, Path):
            check_input_file(self.model, "model file")  # the one file check (directories, FIFOs, names)


_ONNX_TO_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                  "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
                  "tensor(int8)": np.int8, "tensor(bool)": np.bool_}  # fmt: skip


def zero_feeds(session: Any, batch: int) -> dict[str, np.ndarray]:
    """Zeros for every input: the leading (batch) dimension set to `batch`, other dynamic ones to 1."""
    feeds = {}
    for arg in session.get_inputs():
        dims = [
            d if isinstance(d, int) and d > 0 else (batch if i == 0 else 1) for i, d in enumerate(arg.shape)
        ]
        dtype = _ONNX_TO_NUMPY.get(arg.type)
        if dtype is None:
            raise EdgecnnError(f"input {arg.name!r} has type {arg.type}, which placement cannot fill")
        feeds[arg.name] = np.zeros(dims, dtype=dtype)
    return feeds


def measure_placement(config: PlacementConfig) -> Placement:
    """Open a session of its own with ORT's fallback off, run it once on zeros and count where nodes ran.

    A provider that fails to start is an EdgecnnError naming it, never a silent CPU session."""
    import onnxruntime as ort

    model = str(config.model) if isinstance(config.model, Path) else config.model
    with temporary_profile_prefix() as prefix:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, ORT_OPTIMIZATION_LEVELS[config.graph_optimization]
        )
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = prefix
        for key, value in config.extra.items():
            options.add_session_config_entry(key, value)
        try:
            # enable_fallback=0: ORT raises instead of printing "Falling back" and retrying on CPU.
            session = ort.InferenceSession(
                model, options, providers=list(config.providers), enable_fallback=0
            )
            session.run(None, zero_feeds(session, config.batch))
        except EdgecnnError:
            raise
        except Exception as exc:  # noqa: BLE001 - ORT raises Fail/EPFail/RuntimeError for provider trouble
            raise EdgecnnError(f"ONNX Runtime could not run the placement probe: {one_line(exc)}") from None
        return placement_from_session(session)
