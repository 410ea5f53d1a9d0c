"""Options that several commands share, declared once (Typer's `Annotated` aliases).

A command writes `as_json: JsonOption = False`; the flag, its spelling and its help live here."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from edgecnn.runtime.session_config import (
    DEVICES,
    GRAPH_OPTIMIZATION_LEVELS,
    OPENVINO_PRECISIONS,
    PRECISIONS,
    RUNTIMES,
    TRT_PRECISIONS,
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result document as JSON on stdout (tables go to stderr).")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Replace an existing output that edgecnn wrote (never anything else).")
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Directory holding the dataset files (default: $EDGECNN_DATA_DIR, cache)."
    ),
]
DeviceOption = Annotated[str, typer.Option(help=f"{' | '.join(DEVICES)}.")]
ThreadsOption = Annotated[int, typer.Option(help="Intra-op threads (0 = the runtime's default).")]
AllowCpuNodesOption = Annotated[
    bool,
    typer.Option(
        "--allow-cpu-nodes",
        help="On cuda/tensorrt, accept nodes that ONNX Runtime ran on the CPU (default: an error; CPU "
        "shape ops are always accepted and named).",
    ),
]


def output_option(default: str) -> object:
    """`--output/-o` with the command's own default named in its help (e.g. "bench-<timestamp>")."""
    return Annotated[
        Path | None, typer.Option("--output", "-o", help=f"Where to save the result (default {default}).")
    ]


RuntimeOption = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        help=f"{' | '.join(RUNTIMES)}: which runtime runs the model (default: ort for .onnx, litert for "
        ".tflite). OpenVINO and LiteRT are extras: pip install 'edgecnn\\[openvino]' / 'edgecnn\\[litert]'.",
    ),
]
PrecisionOption = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help=f"{' | '.join(PRECISIONS)}, in the runtime's terms. --runtime openvino: its inference "
        f"precision ({', '.join(OPENVINO_PRECISIONS)}; fp32 its default here; bf16/fp16 only on CPUs that "
        "run them natively, e.g. AMX or AVX512_BF16). --device tensorrt: TensorRT's kernels "
        f"({', '.join(TRT_PRECISIONS)}; int8 from the file's Q/DQ scales: an `export --target tensorrt` "
        "file). Elsewhere each file runs at its own precision. "
        "Accuracy changes: measure it with eval.",
    ),
]
TrtEngineCacheOption = Annotated[
    Path | None,
    typer.Option(
        "--trt-engine-cache",
        help="TensorRT engine cache folder (eval/predict default: the user cache dir, per model, versions "
        "and precision; bench: one subfolder per timed batch).",
    ),
]
TrtMinComputeShareOption = Annotated[
    float | None,
    typer.Option(
        "--trt-min-compute-share",
        help="On --device tensorrt, the share (0-1) of Conv/Gemm/MatMul nodes TensorRT must take, else "
        "the run is refused (default: half).",
    ),
]
GraphOptimizationOption = Annotated[
    str,
    typer.Option(
        "--graph-optimization",
        help=f"ONNX Runtime's graph optimizations: {' | '.join(GRAPH_OPTIMIZATION_LEVELS)}.",
    ),
]

# The session options every runtime command takes (eval, predict, bench): name -> (annotation, default).
# A None value is left out of `session`, so SessionConfig's own default applies.
# A new runtime option is a SessionConfig field plus one line here; `session_options` puts it on each
# command and hands the values to the body as `session` (a dict of SessionConfig keyword arguments).
SESSION_OPTIONS: dict[str, tuple[Any, Any]] = {
    "runtime": (RuntimeOption, None),
    "device": (DeviceOption, "cpu"),
    "precision": (PrecisionOption, None),
    "graph_optimization": (GraphOptimizationOption, "all"),
    "trt_engine_cache": (TrtEngineCacheOption, None),
    "trt_min_compute_share": (TrtMinComputeShareOption, None),
}


def session_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the SESSION_OPTIONS flags to a command whose last parameter is `session: dict`; the command
    builds `SessionConfig(**session)` inside its guarded body (so a bad value is one `error:` line)."""
    hints = typing.get_type_hints(command, include_extras=True)
    params = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(command).parameters.values()
        if p.name != "session"
    ]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, (annotation, default) in SESSION_OPTIONS.items()
        if name not in {p.name for p in params}
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in SESSION_OPTIONS if name in kwargs}
        session = {name: value for name, value in given.items() if value is not None}
        command(*args, session=session, **kwargs)

    wrapper.__signature__ = inspect.Signature([*params, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*params, *added]}
    del wrapper.__wrapped__  # typer must read the signature above, not the command's own
    return wrapper
