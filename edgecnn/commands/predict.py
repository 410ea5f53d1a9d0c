"""`edgecnn predict MODEL.onnx IMAGE|DIR ...`: top-k classes of image files (work is in
edgecnn.prediction)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgecnn.commands._common import run_command, styled
from edgecnn.commands.options import (
    AllowCpuNodesOption,
    ForceOption,
    JsonOption,
    ThreadsOption,
    output_option,
    session_options,
)
from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import show_path

if TYPE_CHECKING:
    from edgecnn.prediction import PredictConfig, PredictResult

ModelArgument = Annotated[
    Path,
    typer.Argument(
        help="ONNX model (edgecnn metadata gives its preprocessing), or a bundle tuned by `edgecnn tune`."
    ),
]
InputsArgument = Annotated[
    list[Path], typer.Argument(help="PNG/JPG/NPY files or directories of them (sorted by name).")
]
TopKOption = Annotated[int, typer.Option("--top-k", "-k", help="How many classes to show per image.")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Images per inference call.")]
InvertOption = Annotated[
    bool, typer.Option("--invert", help="Invert pixels (dark ink on white -> MNIST's white on black).")
]
PredictOutputOption = output_option("predict-<timestamp>.json")
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Stop at the first image that cannot be read. Without it, the others are classified and "
        "saved, each bad one is named, and the exit status is 3.",
    ),
]


def result_table(result: PredictResult) -> Table:
    """One row per image with its top-k and, where the file name says, right or wrong."""
    has_truth = bool(result.labelled)
    # Compact enough for an 80-column terminal: the runners-up sit in one column.
    table = Table(title=f"{result.model['path']} on {result.provider}", title_justify="left", box=box.SIMPLE)
    table.add_column("image", no_wrap=True)
    table.add_column("pred", justify="right")
    table.add_column("prob", justify="right")
    if result.config.top_k > 1:
        table.add_column(f"next {result.config.top_k - 1}", no_wrap=True)
    if has_truth:
        table.add_column("true", justify="right")
        table.add_column("ok", justify="center")
    for p in result.predictions:
        row = [show_path(p.path.name), p.predicted.label, f"{p.predicted.probability:.3f}"]
        if result.config.top_k > 1:
            row.append("  ".join(f"{s.label} {s.probability:.3f}" for s in p.top[1:]))
        if has_truth:
            mark = (
                Text("")
                if p.correct is None
                else (Text("yes", "green") if p.correct else Text("WRONG", "red"))
            )
            row += [p.true_label or "-", mark]
        table.add_row(*row)
    for f in result.failed:
        blanks = [""] * (len(table.columns) - 3)
        table.add_row(show_path(f.path.name), Text("unreadable", "red"), "-", *blanks)
    return table


def show(result: PredictResult, console: Console) -> None:
    console.print(result_table(result))
    notes = Counter(n for p in result.predictions for n in p.notes)
    for note, count in notes.items():
        console.print(f"preprocessing: {note} ({count} of {len(result.predictions)} images)")
    for line in result.assumptions:
        console.print(styled("note:", "yellow", f" {line}"))
    for line in result.hints:
        console.print(styled("hint:", "yellow", f" {line}"))
    labelled = result.labelled
    if labelled:
        console.print(f"{result.n_correct}/{len(labelled)} correct where the file name gives the true label")
    console.print(f"placement: {(result.model.get('placement') or {}).get('summary', '-')}")
    console.print(f"provider: {result.provider}; saved {result.output_path}")
    for f in result.failed:
        console.print(styled("failed:", "red", f" {f.error}"), soft_wrap=True)


@session_options
def predict_command(
    model: ModelArgument,
    inputs: InputsArgument,
    top_k: TopKOption = 3,
    batch_size: BatchSizeOption = 32,
    invert: InvertOption = False,
    threads: ThreadsOption = 0,
    allow_cpu_nodes: AllowCpuNodesOption = False,
    output: PredictOutputOption = None,
    force: ForceOption = False,
    strict: StrictOption = False,
    as_json: JsonOption = False,
    session: dict | None = None,
) -> None:
    """Classify images with an ONNX model: top-k classes with probabilities. Exit status: 0 all images
    classified, 1 nothing done (error), 3 some images could not be read (the rest are saved)."""

    def config() -> PredictConfig:
        from edgecnn.prediction import PredictConfig
        from edgecnn.runtime.session_config import SessionConfig

        return PredictConfig(
            model=model,
            inputs=tuple(inputs),
            top_k=top_k,
            batch_size=batch_size,
            invert=invert,
            output=output,
            force=force,
            session=SessionConfig(**(session or {}), threads=threads),
            allow_cpu_nodes=allow_cpu_nodes,
            strict=strict,
        )

    run_command(config, run_predict, show, as_json=as_json, failure=partial_failure)


def run_predict(config: PredictConfig) -> PredictResult:
    from edgecnn.prediction import predict

    return predict(config)


def partial_failure(result: PredictResult) -> EdgecnnError | None:
    """Some images could not be read: the rest are classified and saved, and the exit status is 3."""
    from edgecnn.prediction.predict import PARTIAL_EXIT

    if not result.failed:
        return None
    n, total = len(result.failed), len(result.failed) + len(result.predictions)
    error = EdgecnnError(
        f"{n} of {total} images could not be read ({result.failed[0].path.name}"
        f"{' ...' if n > 1 else ''}); the other {len(result.predictions)} were classified and saved "
        f"in {result.output_path} (--strict stops at the first)"
    )
    error.exit_code = PARTIAL_EXIT
    return error


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
