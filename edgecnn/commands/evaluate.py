"""`edgecnn eval MODEL.onnx --data mnist`: accuracy on a real test set (work is in edgecnn.evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgecnn.commands._common import run_command, stderr_console, styled
from edgecnn.commands.options import (
    AllowCpuNodesOption,
    DataDirOption,
    ForceOption,
    JsonOption,
    ThreadsOption,
    output_option,
    session_options,
)
from edgecnn.commands.progress_bars import rich_progress
from edgecnn.data.dataset_registry import names_help

if TYPE_CHECKING:
    from edgecnn.evaluation import EvalConfig, EvalResult

ModelArgument = Annotated[
    Path, typer.Argument(help="ONNX model to evaluate (a tuned bundle directory: its device pick).")
]
DataOption = Annotated[
    str | None,
    typer.Option(help=f"{names_help(sep=' | ', last=' | ')} (default: the model's own dataset)."),
]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", help="Images per inference call.")]
LimitOption = Annotated[
    int | None, typer.Option(help="Evaluate only the first N test images (default: all).")
]
EvalOutputOption = output_option("eval-<timestamp>")
DownloadOption = Annotated[
    bool,
    typer.Option(
        "--download/--no-download",
        help="Refused: eval never downloads (runtime commands never import TensorFlow); "
        "use `edgecnn data fetch NAME`.",
    ),
]
PlotOption = Annotated[bool, typer.Option("--plot/--no-plot", help="Save the confusion-matrix PNG.")]


def result_table(result: EvalResult) -> Table:
    table = Table(
        title=f"{result.model['path']} on {result.dataset['name']} test ({result.num_images} images, "
        f"{result.provider})",
        title_justify="left",
    )
    table.add_column("class")
    table.add_column("support", justify="right")
    table.add_column("correct", justify="right")
    table.add_column("accuracy", justify="right")
    for c in result.per_class:
        table.add_row(
            c.label, str(c.support), str(c.correct), "-" if c.accuracy is None else f"{c.accuracy:.4f}"
        )
    table.add_section()
    table.add_row("all", str(result.num_images), str(result.correct), Text(f"{result.accuracy:.4f}", "bold"))
    return table


def show(result: EvalResult, console: Console) -> None:
    console.print(result_table(result))
    for line in result.assumptions:
        console.print(styled("note:", "yellow", f" {line}"))
    console.print(f"placement: {(result.model.get('placement') or {}).get('summary', '-')}")
    console.print(
        f"accuracy {result.accuracy:.4f} ({result.correct}/{result.num_images}) on "
        f"{result.provider}; saved {result.json_path}"
        + (f" and {result.plot_path}" if result.plot_path else "")
    )


@session_options
def eval_command(
    model: ModelArgument,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    batch_size: BatchSizeOption = 256,
    limit: LimitOption = None,
    threads: ThreadsOption = 0,
    allow_cpu_nodes: AllowCpuNodesOption = False,
    output: EvalOutputOption = None,
    force: ForceOption = False,
    download: DownloadOption = False,
    plot: PlotOption = True,
    as_json: JsonOption = False,
    session: dict | None = None,
) -> None:
    """Accuracy, per-class accuracy and confusion matrix of an ONNX model on the real test set."""

    def config() -> EvalConfig:
        from edgecnn.evaluation import EvalConfig
        from edgecnn.runtime.session_config import SessionConfig

        return EvalConfig(
            model=model,
            data=data,
            data_dir=data_dir,
            batch_size=batch_size,
            limit=limit,
            output_dir=output,
            force=force,
            plot=plot,
            download=download,
            session=SessionConfig(**(session or {}), threads=threads),
            allow_cpu_nodes=allow_cpu_nodes,
        )

    run_command(config, run_eval, show, as_json=as_json)


def run_eval(config: EvalConfig) -> EvalResult:
    from edgecnn.evaluation import evaluate

    with rich_progress(stderr_console) as progress:
        return evaluate(config, progress=progress)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
