"""Options that several commands share, declared once (Typer's `Annotated` aliases).

A command writes `as_json: JsonOption = False`; the flag, its spelling and its help live here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
DeviceOption = Annotated[str, typer.Option(help="cpu | cuda | tensorrt | auto.")]
ThreadsOption = Annotated[int, typer.Option(help="Intra-op threads (0 = ONNX Runtime's default).")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="TensorRT's own precision on --device tensorrt: fp32 | fp16 (TensorRT FP16 kernels) | int8 "
        "(from the file's Q/DQ scales: an `export --target tensorrt` file)."
    ),
]
TrtEngineCacheOption = Annotated[
    Path | None,
    typer.Option(
        "--trt-engine-cache",
        help="TensorRT engine cache folder (default: the user cache dir, per model, versions and precision).",
    ),
]
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
