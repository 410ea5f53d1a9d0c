"""`edgecnn optimize MODEL.onnx`: parse options, call edgecnn.runtime.optimize, show the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from edgecnn.commands._common import run_command
from edgecnn.commands.options import DataDirOption, ForceOption, JsonOption

if TYPE_CHECKING:
    from edgecnn.runtime.optimize import OptimizeConfig, OptimizeResult


ModelArgument = Annotated[
    Path, typer.Argument(help="Portable ONNX model (e.g. model.int8.onnx) to optimize.")
]
OptimizeOutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Where to write the CPU-specific graph (default <stem>.cpu.onnx)."),
]
CheckImagesOption = Annotated[
    int, typer.Option("--check-images", help="Images the outputs are compared on before writing.")
]


def show(result: OptimizeResult, console: Console) -> None:
    ops = sum(result.optimized_ops.values())
    fused = result.rewrites["reorder_quantize_transpose_to_channels_last"]
    p = result.parity
    t = result.target
    console.print(f"optimized {result.source} for this CPU -> {result.output}")
    console.print(
        f"  graph ORT runs: {ops} nodes (the file had {sum(result.source_ops.values())}); "
        f"layout fusions by edgecnn: {fused} ReorderOutput+QuantizeLinear+Transpose -> "
        "channels-last ReorderOutput+QuantizeLinear"
    )
    console.print(
        f"  same outputs as the portable model on {p['images']} {p['inputs']} images: "
        f"max |diff| {p['max_abs_diff']:.3g}, top-1 agreement {p['top1_agreement']:.2%}"
    )
    console.print(
        f"  runs only on: onnxruntime {t['onnxruntime']}, {t['machine']}, {' '.join(t['isa'])} "
        "(CPU provider); keep shipping the portable model"
    )
    console.print(f"saved {result.output} and {result.report}")


def optimize_command(
    model: ModelArgument,
    output: OptimizeOutputOption = None,
    force: ForceOption = False,
    check_images: CheckImagesOption = 256,
    data_dir: DataDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save the graph ONNX Runtime runs on THIS CPU, with edgecnn's layout fusion; it runs only here."""

    def config() -> OptimizeConfig:
        from edgecnn.runtime.optimize import OptimizeConfig

        return OptimizeConfig(
            model=model, output=output, force=force, check_images=check_images, data_dir=data_dir
        )

    run_command(config, run_optimize, show, as_json=as_json)


def run_optimize(config: OptimizeConfig) -> OptimizeResult:
    from edgecnn.runtime.optimize import optimize

    return optimize(config)


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize_command)
