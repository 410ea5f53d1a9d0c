"""`edgecnn compare RESULT.json ...`: parse options, call edgecnn.benchmarking.compare, show the table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgecnn.benchmarking.compare import METRICS
from edgecnn.commands._common import plain_console, run_command, styled
from edgecnn.commands.options import ForceOption, JsonOption, output_option

if TYPE_CHECKING:
    from edgecnn.benchmarking import CompareConfig, CompareResult


def render(document: dict[str, Any], console: Console) -> None:
    console = plain_console(console, min_width=150)
    metric = document["metric"]
    unit = "images/s" if metric == "throughput" else metric.replace("_ms", " ms")
    runs = document["runs"]
    table = Table(
        title=f"{unit} per model and batch; × = speedup vs {runs[0]['label']} (> 1 is faster)",
        title_justify="left",
    )
    table.add_column("model")
    table.add_column("batch", justify="right")
    for i, run in enumerate(runs):
        table.add_column(f"{run['label']}\n{unit}", justify="right")
        if i:
            table.add_column("×", justify="right")
    for row in document["rows"]:
        cells = [row["key"], str(row["batch"])]
        for i, entry in enumerate(row["runs"]):
            value = None if entry is None else entry.get(metric)
            cells.append(
                "-" if value is None else (f"{value:,.0f}" if metric == "throughput" else f"{value:.3f}")
            )
            if i:
                speedup = None if entry is None else entry.get("speedup")
                cells.append("-" if speedup is None else f"{speedup:.2f}")
        table.add_row(*cells)
    console.print(table)
    for run in runs:
        gpus = f", GPU {', '.join(run['gpus'])}" if run.get("gpus") else ""
        console.print(
            f"{run['label']}: {run['path']} | {run.get('cpu')}{gpus} | "
            f"onnxruntime {run.get('onnxruntime')} | {', '.join(run.get('providers') or [])} | "
            f"{run.get('created_at')}"
        )
    for note in document.get("notes") or []:
        console.print(styled("note:", "yellow", f" {note}"))
    files = document.get("files") or {}
    if files:
        console.print("saved " + ", ".join(str(p) for p in files.values()))


ResultsArgument = Annotated[
    list[Path], typer.Argument(help="bench.json files (or bench result directories) to merge.")
]
LabelOption = Annotated[
    list[str] | None,
    typer.Option("--label", "-l", help="A name per result, in order (default: host and provider)."),
]
MetricOption = Annotated[str, typer.Option(help=f"{' | '.join(METRICS)}.")]
CompareOutputOption = output_option("compare-<timestamp>")


def compare_command(
    results: ResultsArgument,
    label: LabelOption = None,
    metric: MetricOption = "p50_ms",
    output: CompareOutputOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Merge bench results from several devices or runs into one table and one plot."""

    def config() -> CompareConfig:
        from edgecnn.benchmarking import CompareConfig
        from edgecnn.core.files import timestamped_path

        return CompareConfig(
            results=tuple(results),
            labels=tuple(label or ()),
            metric=metric,
            output_dir=output if output is not None else timestamped_path("compare"),
            force=force,
        )

    run_command(config, run_compare, show, as_json=as_json, document=compare_document)


def run_compare(config: CompareConfig) -> CompareResult:
    from edgecnn.benchmarking import compare

    return compare(config)


def show(result: CompareResult, console: Console) -> None:
    render(result.document, console)


def compare_document(result: CompareResult) -> dict[str, Any]:
    return result.document


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
