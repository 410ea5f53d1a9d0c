"""`edgecnn tune BUNDLE`: parse options, call edgecnn.benchmarking.tune.tune, show the pick."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from edgecnn.benchmarking.tune import TUNE_DEVICES
from edgecnn.commands._common import add_name_column, run_command, stderr_console, styled
from edgecnn.commands.options import DataDirOption, ForceOption, JsonOption
from edgecnn.commands.progress_bars import rich_progress
from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP
from edgecnn.core.input_files import show_path
from edgecnn.runtime.session_config import RUNTIMES

if TYPE_CHECKING:
    from edgecnn.benchmarking.tune import TuneConfig, TuneResult
    from edgecnn.benchmarking.tune_plan import TuneEstimate

BundleArgument = Annotated[
    Path, typer.Argument(help="Export bundle directory (model.onnx, model.int8*.onnx).")
]
TuneDeviceOption = Annotated[
    str,
    typer.Option("--device", help=f"{' | '.join(TUNE_DEVICES)} (GPU: FP32/FP16/INT8-TRT x CUDA graphs)."),
]
BatchOption = Annotated[str, typer.Option("--batch", help="Batch sizes to tune for, e.g. 1,64.")]
ThreadsListOption = Annotated[
    str | None, typer.Option("--threads", help="Thread counts to try, e.g. 1,2 (default 1..cores, max 4).")
]
RoundsOption = Annotated[
    int,
    typer.Option(
        "--rounds",
        help="Interleaved timing rounds per batch size (fewer: faster, noisier picks); the close finalists "
        "are re-timed head to head in twice as many.",
    ),
]
ImagesOption = Annotated[
    int | None,
    typer.Option(
        "--images",
        help="Check accuracy on a seeded random N of export's images instead of all (faster on a slow "
        "board); the check then reports a 95% interval and rejects a file only when all of it is beyond "
        "--tolerance.",
    ),
]
ToleranceOption = Annotated[
    float, typer.Option("--tolerance", help="Largest accuracy difference (pp) from export's, same images.")
]
RuntimesOption = Annotated[
    str | None,
    typer.Option(
        "--runtimes",
        help=f"Runtimes to choose among ({', '.join(RUNTIMES)}), e.g. ort,litert (default: every "
        "installed one; ORT FP32 is always measured, the reference).",
    ),
]
MaxDropOption = Annotated[
    float | None,
    typer.Option(
        "--max-accuracy-drop",
        help="Largest accuracy drop vs FP32 (pp, measured here) a pick may have "
        f"(default: export's, else the INT8 bound {DEFAULT_MAX_ACCURACY_DROP_PP:g}).",
    ),
]


def show_estimate(estimate: TuneEstimate, console: Console) -> None:
    e = estimate
    sample = "" if e.images >= e.export_images else f" (a sample of {e.export_images}: --images)"
    console.print(
        f"tune: {e.images} images{sample} x {e.candidates} files for accuracy, then {e.rounds} rounds x "
        f"{e.candidates} files x {len(e.batch_sizes)} batch sizes x {e.thread_counts} thread counts, then "
        f"the close finalists (at most {e.max_finalists} per batch and thread count) in {e.finalist_rounds} "
        f"rounds; about {e.total_s:.0f} s here ({e.accuracy_s:.0f} s accuracy, {e.timing_s:.0f} s timing, "
        f"{e.finalists_s:.0f} s finalists if every cell has {e.max_finalists}, from FP32's "
        f"{e.fp32_ms_per_image:.3f} ms/image)",
        soft_wrap=True,
    )


def show(result: TuneResult, console: Console) -> None:
    batches = list(result.config.batch_sizes)
    table = Table(title=f"{show_path(result.config.bundle)} on this {result.isa_class} CPU", box=box.SIMPLE)
    add_name_column(table, "file @ runtime", [c.label for c in result.candidates])
    for col in ("suits", "export acc", "acc here", *[f"b{b} ms (threads)" for b in batches]):
        table.add_column(col, justify="left" if col == "suits" else "right", overflow="fold")
    for c in result.candidates:
        acc = "-" if c.device_accuracy is None else f"{c.device_accuracy:.2%}"
        exp = "-" if c.export_accuracy is None else f"{c.export_accuracy:.2%}"
        cells = []
        for b in batches:
            per = c.latency_ms.get(b, {})
            cells.append(" ".join(f"{ms:.3f}({t})" for t, ms in sorted(per.items())) or "rejected")
        table.add_row(c.label, ",".join(c.suits) or "-", exp, acc, *cells)
    console.print(table)
    for line in result.skipped_runtimes:
        console.print(styled("skipped:", "yellow", f" {line}"), soft_wrap=True)
    check = result.accuracy_check
    if check.get("images", 0) < check.get("of", 0):
        console.print(
            f"accuracy checked on {check['images']} of export's {check['of']} images; difference from "
            f"export ({check['confidence']:.0%} interval, rejected only when all of it is beyond "
            f"{result.config.tolerance_pp:g} pp):"
        )
        for c in result.candidates:
            if c.difference_pp is not None:
                lo, hi = c.difference_pp
                console.print(f"  {show_path(c.label)}: {lo:+.2f} .. {hi:+.2f} pp", soft_wrap=True)
    for c in result.candidates:
        if c.reason:
            console.print(styled(f"{show_path(c.label)}:", "yellow", f" {c.reason}"), soft_wrap=True)
    for note in result.notes:
        console.print(styled("note:", "yellow", f" {note}"), soft_wrap=True)
    for b, p in result.picks.items():
        runtime = p.get("runtime", "ort") + (f" ({p['precision']})" if p.get("precision") else "")
        console.print(
            f"batch {b}: {show_path(p['file'])} in {runtime} with {p['threads']} thread(s), "
            f"{p['p50_ms']:.3f} ms ({p['speedup_vs_fp32']:.2f}x the bundle's ORT FP32)",
            soft_wrap=True,
        )
    for d in result.finalists:
        if d.rounds:
            others = ", ".join(
                f"{show_path(k)} {v:.3f}" for k, v in d.ratio_to_winner.items() if k != d.winner
            )
            console.print(
                f"batch {d.batch}, {d.threads} thread(s): {len(d.finalists)} finalists re-timed in "
                f"{d.rounds} paired rounds; {show_path(d.winner)} won (the others' median round ratio to "
                f"it: {others})",
                soft_wrap=True,
            )
    console.print(
        f"saved {show_path(result.record_path)} after {result.wall_s:.1f} s; predict, eval and bench use it "
        f"when given {show_path(result.config.bundle)}",
        soft_wrap=True,
    )


def tune_command(
    bundle: BundleArgument,
    batch: BatchOption = "1,64",
    threads: ThreadsListOption = None,
    rounds: RoundsOption = 7,
    images: ImagesOption = None,
    tolerance: ToleranceOption = 0.1,
    max_accuracy_drop: MaxDropOption = None,
    data_dir: DataDirOption = None,
    runtimes: RuntimesOption = None,
    force: ForceOption = False,
    device: TuneDeviceOption = "cpu",
    as_json: JsonOption = False,
) -> None:
    """Measure the bundle's files in every installed runtime on THIS device; record the fastest accurate
    (file, runtime, threads)."""

    def config() -> TuneConfig:
        from edgecnn.benchmarking.bench_config import parse_batch_sizes, parse_thread_counts
        from edgecnn.benchmarking.tune import TuneConfig
        from edgecnn.runtime.session_config import SessionConfig

        return TuneConfig(
            bundle=bundle,
            batch_sizes=parse_batch_sizes(batch),
            thread_counts=parse_thread_counts(threads) if threads else (),
            rounds=rounds,
            tolerance_pp=tolerance,
            max_accuracy_drop=max_accuracy_drop,
            data_dir=data_dir,
            force=force,
            runtime_list=tuple(r.strip() for r in (runtimes or "").split(",") if r.strip()),
            session=SessionConfig(device=device),
            images=images,
        )

    run_command(config, run_tune, show, as_json=as_json)


def run_tune(config: TuneConfig) -> TuneResult:
    """Plan (the estimate goes to stderr first), then measure with progress bars."""
    from edgecnn.benchmarking.tune import plan_tune, tune

    plan = plan_tune(config)
    show_estimate(plan.estimate, stderr_console)
    with rich_progress(stderr_console) as progress:
        return tune(config, progress, plan)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)
