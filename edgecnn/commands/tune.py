"""`edgecnn tune BUNDLE`: parse options, call edgecnn.benchmarking.tune.tune, show the pick."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from edgecnn.commands._common import add_name_column, run_command, styled
from edgecnn.commands.options import DataDirOption, ForceOption, JsonOption

if TYPE_CHECKING:
    from edgecnn.benchmarking.tune import TuneConfig, TuneResult

BundleArgument = Annotated[
    Path, typer.Argument(help="Export bundle directory (model.onnx, model.int8*.onnx).")
]
BatchOption = Annotated[str, typer.Option("--batch", help="Batch sizes to tune for, e.g. 1,64.")]
ThreadsListOption = Annotated[
    str | None, typer.Option("--threads", help="Thread counts to try, e.g. 1,2 (default 1..cores, max 4).")
]
RoundsOption = Annotated[int, typer.Option("--rounds", help="Interleaved timing rounds per batch size.")]
ToleranceOption = Annotated[
    float, typer.Option("--tolerance", help="Largest accuracy difference (pp) from export's, same images.")
]
MaxDropOption = Annotated[
    float | None,
    typer.Option(
        "--max-accuracy-drop",
        help="Largest accuracy drop vs FP32 (pp, measured here) a pick may have (default: export's or 0.5).",
    ),
]


def show(result: TuneResult, console: Console) -> None:
    batches = list(result.config.batch_sizes)
    table = Table(title=f"{result.config.bundle} on this {result.isa_class} CPU", box=box.SIMPLE)
    add_name_column(table, "file", [c.file for c in result.candidates])
    for col in ("suits", "export acc", "acc here", *[f"b{b} ms (threads)" for b in batches]):
        table.add_column(col, justify="left" if col == "suits" else "right", overflow="fold")
    for c in result.candidates:
        acc = "-" if c.device_accuracy is None else f"{c.device_accuracy:.2%}"
        exp = "-" if c.export_accuracy is None else f"{c.export_accuracy:.2%}"
        cells = []
        for b in batches:
            per = c.latency_ms.get(b, {})
            cells.append(" ".join(f"{ms:.3f}({t})" for t, ms in sorted(per.items())) or "rejected")
        table.add_row(c.file, ",".join(c.suits) or "-", exp, acc, *cells)
    console.print(table)
    for c in result.candidates:
        if c.reason:
            console.print(styled(f"{c.file}:", "yellow", f" {c.reason}"))
    for b, p in result.picks.items():
        console.print(
            f"batch {b}: {p['file']} with {p['threads']} thread(s), {p['p50_ms']:.3f} ms "
            f"({p['speedup_vs_fp32']:.2f}x the bundle's FP32)"
        )
    console.print(
        f"saved {result.record_path}; predict, eval and bench use it when given {result.config.bundle}"
    )


def tune_command(
    bundle: BundleArgument,
    batch: BatchOption = "1,64",
    threads: ThreadsListOption = None,
    rounds: RoundsOption = 7,
    tolerance: ToleranceOption = 0.1,
    max_accuracy_drop: MaxDropOption = None,
    data_dir: DataDirOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Measure the bundle's FP32 and INT8 files on THIS device; record the fastest accurate one."""

    def config() -> TuneConfig:
        from edgecnn.benchmarking.config import parse_batch_sizes, parse_thread_counts
        from edgecnn.benchmarking.tune import TuneConfig

        return TuneConfig(
            bundle=bundle,
            batch_sizes=parse_batch_sizes(batch),
            thread_counts=parse_thread_counts(threads) if threads else (),
            rounds=rounds,
            tolerance_pp=tolerance,
            max_accuracy_drop=max_accuracy_drop,
            data_dir=data_dir,
            force=force,
        )

    run_command(config, run_tune, show, as_json=as_json)


def run_tune(config: TuneConfig) -> TuneResult:
    from edgecnn.benchmarking.tune import tune

    return tune(config)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)
