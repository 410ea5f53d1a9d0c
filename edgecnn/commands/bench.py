"""`edgecnn bench MODEL.onnx ...`: parse options, call edgecnn.benchmarking.bench, show the tables."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgecnn.commands._common import (
    add_name_column,
    console_for,
    plain_console,
    run_command,
    stderr_console,
    styled,
)
from edgecnn.commands.options import (
    AllowCpuNodesOption,
    DataDirOption,
    ForceOption,
    JsonOption,
    output_option,
    session_options,
)
from edgecnn.commands.progress_bars import rich_progress
from edgecnn.core.progress import Progress, ProgressEvent
from edgecnn.runtime.session_config import MODEL_SUFFIX_HELP

if TYPE_CHECKING:
    from edgecnn.benchmarking import BenchConfig


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def render(document: dict[str, Any], console: Console) -> None:
    """The models side by side per batch size, then what each model costs to load, then the floor."""
    console = plain_console(console, min_width=150)
    console.print(_latency_table(document))
    console.print(_models_table(document["models"]))
    _print_footer(document, console)
    render_op_profiles(document, console)
    files = document.get("files") or {}
    if files:
        console.print("saved " + ", ".join(str(p) for p in files.values()))


def _latency_table(document: dict[str, Any]) -> Table:
    models = document["models"]
    cfg = document["config"]
    runs = f"{cfg['iterations']} timed runs" if cfg.get("iterations") else f"{cfg['duration_s']} s"
    interleaved = bool(document.get("interleaved"))
    if interleaved and len(models) > 1:
        how = f", interleaved in {cfg.get('rounds')} rotating rounds"
    elif len(models) > 1:
        how = ", one model after the other"
    else:
        how = ""
    table = Table(
        title=f"latency per batch in ms ({runs} after {cfg['warmup']} warmup{how}) and throughput",
        title_justify="left",
    )
    ratios = len(models) > 1
    columns = [
        ("batch", "right"), ("model", "left"), ("p50", "right"), ("p90", "right"), ("p95", "right"),
        ("p99", "right"), ("mean", "right"), ("std", "right"), ("min", "right"), ("max", "right"),
        ("images/s", "right"), ("GFLOP/s", "right"), ("peak RSS MB", "right"), ("provider", "left"),
    ]  # fmt: skip
    if ratios:
        # Speedup over the first model: > 1 is faster. The per-round median pairs rounds run back to back.
        columns[3:3] = [("x base (rounds)" if interleaved else "x base", "right")]
    for col, justify in columns:
        if col == "model":
            add_name_column(table, col, [m["name"] for m in models])
        else:
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    batches = sorted({r["batch"] for m in models for r in m["results"]})
    for bi, batch in enumerate(batches):
        for m in models:
            for r in m["results"]:
                if r["batch"] != batch:
                    continue
                cells = [
                    str(batch), m["name"], f"{r['p50_ms']:.3f}", f"{r['p90_ms']:.3f}", f"{r['p95_ms']:.3f}",
                    f"{r['p99_ms']:.3f}", f"{r['mean_ms']:.3f}", f"{r['std_ms']:.3f}", f"{r['min_ms']:.3f}",
                    f"{r['max_ms']:.3f}", f"{r['throughput']:,.0f}", _num(r.get("gflops"), ".2f"),
                    _mb(r.get("peak_rss_bytes")), r["provider"].replace("ExecutionProvider", ""),
                ]  # fmt: skip
                if ratios:
                    cell = _num(r.get("speedup_vs_baseline"), ".2f")
                    if interleaved:
                        cell += f" ({_num(r.get('round_speedup_vs_baseline'), '.2f')})"
                    cells[3:3] = [cell]
                table.add_row(*cells, end_section=bi < len(batches) - 1 and m is models[-1])
    return table


def _models_table(models: list[dict[str, Any]]) -> Table:
    load = Table(title="models", title_justify="left")
    add_name_column(load, "model", [m["name"] for m in models])
    for col in ("variant", "size MB", "MMACs/image", "cold start ms", "= create", "+ first run",
                "session RSS MB", "inputs", "provider"):  # fmt: skip
        load.add_column(col, overflow="fold")
    for m in models:
        macs = m.get("macs_per_image")
        first = m["results"][0]["input_source"] if m["results"] else "-"
        load.add_row(
            m["name"], m.get("variant") or "-", _mb(m["size_bytes"]),
            "-" if not macs else f"{macs / 1e6:.2f} ({m.get('macs_source')})",
            f"{m['cold_start_ms']:.1f}", f"{m['session_create_ms']:.1f}", f"{m['first_run_ms']:.1f}",
            _mb(m.get("session_rss_delta_bytes")), first, m["provider"].replace("ExecutionProvider", ""),
        )  # fmt: skip
    return load


def _print_footer(document: dict[str, Any], console: Console) -> None:
    """The harness floor, the machine, what the ratios mean, and every note."""
    models = document["models"]
    h = document["harness_overhead"]
    fastest = min((r["p50_ms"] for m in models for r in m["results"]), default=None)
    share = f" = {h['p50_us'] / (fastest * 1e3):.2%} of the fastest p50" if fastest else ""
    console.print(
        f"harness overhead (same timed loop around an empty call, {h['iterations']} runs): "
        f"mean {h['mean_us']:.3f} µs, p50 {h['p50_us']:.3f} µs{share}, p99 {h['p99_us']:.3f} µs"
    )
    cpu = document["environment"]["hardware"]["cpu"]
    console.print(
        f"on {cpu.get('model')} ({cpu.get('usable_cores')} usable cores; {' '.join(cpu.get('flags', []))}), "
        f"onnxruntime {document['onnxruntime']['version']}, ran on {', '.join(document['providers_ran'])}"
    )
    for m in models:
        if m.get("placement_summary"):
            console.print(f"placement ({m['name']}): {m['placement_summary']}")
    if len(models) > 1:
        interleaved = bool(document.get("interleaved"))
        baseline = document.get("baseline") or models[0]["name"]
        console.print(
            f"x base = how many times faster than the baseline {baseline} "
            "at the same batch (baseline p50 / p50)"
            + ("; (rounds) = median of the per-round ratios, robust to drift" if interleaved else "")
        )
    for note in document.get("notes", []):
        console.print(f"note: {note}", style="yellow")
    for m in models:
        for note in m.get("notes", []):
            console.print(f"note ({m['name']}): {note}", style="yellow")


def render_thread_sweep(document: dict[str, Any], console: Console) -> None:
    counts = [str(t) for t in document["thread_counts"]]
    table = Table(title="p50 ms per intra-op thread count (0 = ORT's default)", title_justify="left")
    add_name_column(table, "model", [row["model"] for row in document["fastest"]])
    for col in ("batch", *[f"{t} thr" for t in counts], "fastest", "x slowest"):
        table.add_column(col, justify="right", overflow="fold")
    for row in document["fastest"]:
        cells = [row["model"], str(row["batch"])]
        cells += [_num(row["p50_ms"].get(t), ".3f") for t in counts]
        cells += [str(row["fastest_threads"]), f"{row['speedup_vs_slowest']:.2f}"]
        table.add_row(*cells)
    console.print(table)
    for note in document.get("notes", []):
        console.print(f"note: {note}", style="yellow")
    files = document.get("files") or {}
    if files:
        console.print("saved " + ", ".join(str(p) for p in files.values()) + " (and one directory per count)")


PROFILE_ROWS = 20


def render_op_profiles(document: dict[str, Any], console: Console) -> None:
    """Per model and batch, the nodes ORT ran with their median kernel time (in execution order; the
    slowest PROFILE_ROWS when the graph is larger)."""
    for m in document["models"]:
        p50 = {r["batch"]: r["p50_ms"] for r in m["results"]}
        for prof in m.get("op_profiles") or []:
            nodes = prof["nodes"]
            shown = nodes
            if len(nodes) > PROFILE_ROWS:
                shown = sorted(nodes, key=lambda n: -n["median_us"])[:PROFILE_ROWS]
            batch = prof["batch"]
            table = Table(
                title=f"where the time goes: {m['name']} batch {batch} (ORT profiler, median of "
                f"{prof['runs']} runs; run {prof['run_median_us']:.1f} µs with the profiler on, p50 "
                f"{p50.get(batch, float('nan')) * 1e3:.1f} µs without)",
                title_justify="left",
            )
            for col, justify in (("node", "left"), ("op", "left"), ("µs", "right"), ("share", "right")):
                table.add_column(col, justify=justify)  # type: ignore[arg-type]
            for n in shown:
                table.add_row(n["node"], n["op_type"], f"{n['median_us']:.1f}", f"{n['share']:.0%}")
            if len(shown) < len(nodes):
                rest = sum(n["share"] for n in nodes) - sum(n["share"] for n in shown)
                table.add_row(f"({len(nodes) - len(shown)} more nodes)", "", "", f"{rest:.0%}")
            console.print(table)


ModelsArgument = Annotated[
    list[Path],
    typer.Argument(
        help=".onnx/.tflite model files to benchmark side by side (a tuned bundle directory: its device "
        "pick, in the runtime and precision tune recorded). " + MODEL_SUFFIX_HELP.replace("[", "\\[")
    ),
]
BatchOption = Annotated[str, typer.Option("--batch", "-b", help="Batch sizes to sweep, e.g. 1,8,64.")]
WarmupOption = Annotated[int, typer.Option(help="Untimed runs per model and batch before timing.")]
IterationsOption = Annotated[
    int | None, typer.Option("--iterations", "-n", help="Timed runs per model and batch (default 100).")
]
DurationOption = Annotated[
    float | None, typer.Option("--duration", help="Time each model and batch for this many seconds.")
]
ThreadCountsOption = Annotated[
    str,
    typer.Option(
        "--threads",
        help="Intra-op threads (0 = ONNX Runtime's default); several, e.g. 1,2, benchmark each "
        "count in its own process and show the fastest per model and batch.",
    ),
]
InterThreadsOption = Annotated[int, typer.Option("--inter-threads", help="Inter-op threads (0 = default).")]
SpinOption = Annotated[
    bool | None,
    typer.Option("--spin/--no-spin", help="Let ORT worker threads busy-wait (default: ORT's choice)."),
]
IoBindingOption = Annotated[
    bool,
    typer.Option(
        "--io-binding/--no-io-binding",
        help="Pre-bind inputs/outputs on the device (default); --no-io-binding times session.run "
        "with host arrays, copies included.",
    ),
]
CudaGraphsOption = Annotated[bool, typer.Option("--cuda-graphs", help="Capture and replay CUDA graphs.")]
DeviceIdOption = Annotated[int, typer.Option("--device-id", help="GPU index for cuda/tensorrt.")]
InputsOption = Annotated[
    str,
    typer.Option(
        help="auto: real test images where the metadata names a dataset on disk, else random; "
        "real: require them; random: always random."
    ),
]
BenchOutputOption = output_option("bench-<timestamp>")
SeedOption = Annotated[int, typer.Option(help="Seed for random inputs.")]
InterleaveOption = Annotated[
    bool,
    typer.Option(
        "--interleave/--no-interleave",
        help="Time the models side by side in rotating rounds (default), so a change in this "
        "machine's load hits all alike; --no-interleave times one model after the other.",
    ),
]
RoundsOption = Annotated[
    int | None,
    typer.Option(
        "--rounds",
        help="Interleaved rounds per batch; each model runs iterations/rounds calls (or "
        "duration/rounds seconds) per round (default min(10, iterations)).",
    ),
]
OpProfileOption = Annotated[
    bool,
    typer.Option(
        "--op-profile",
        help="After the timing, profile each model and batch with ONNX Runtime's profiler and "
        "show the time per node (a separate session: the timed runs stay unprofiled).",
    ),
]
ProfileRunsOption = Annotated[int, typer.Option("--profile-runs", help="Profiled runs per model and batch.")]


def _announce_thread_counts(console: Console) -> Progress:
    """A thread sweep's progress: one line as each thread count's own process starts."""
    from edgecnn.benchmarking.sweep import PROGRESS_TASK as SWEEP_TASK

    def on_event(event: ProgressEvent) -> None:
        if event.task == SWEEP_TASK:
            console.print(styled(event.description, "bold", " (own process)"))

    return on_event


def show(document: dict[str, Any], console: Console) -> None:
    """A bench document's tables, or per thread count its tables and then the fastest count."""
    if document.get("kind") != "edgecnn.bench-threads":
        render(document, console)
        return
    for run in document["runs"]:
        console.print(styled(f"intra-op threads: {run['config']['intra_op_threads']}", "bold"))
        render(run, console)
    render_thread_sweep(document, console)


@session_options
def bench_command(
    models: ModelsArgument,
    batch: BatchOption = "1",
    warmup: WarmupOption = 10,
    iterations: IterationsOption = None,
    duration: DurationOption = None,
    threads: ThreadCountsOption = "0",
    inter_threads: InterThreadsOption = 0,
    spin: SpinOption = None,
    io_binding: IoBindingOption = True,
    cuda_graphs: CudaGraphsOption = False,
    device_id: DeviceIdOption = 0,
    inputs: InputsOption = "auto",
    data_dir: DataDirOption = None,
    output: BenchOutputOption = None,
    force: ForceOption = False,
    seed: SeedOption = 0,
    interleave: InterleaveOption = True,
    rounds: RoundsOption = None,
    op_profile: OpProfileOption = False,
    profile_runs: ProfileRunsOption = 200,
    allow_cpu_nodes: AllowCpuNodesOption = False,
    as_json: JsonOption = False,
    session: dict | None = None,
) -> None:
    """Latency percentiles, throughput, cold start, memory and GFLOP/s on this device."""

    def config() -> BenchConfig:
        from edgecnn.benchmarking import BenchConfig, parse_batch_sizes, parse_thread_counts
        from edgecnn.core.files import timestamped_path
        from edgecnn.runtime.session_config import SessionConfig, parse_model_argument

        sessions = SessionConfig(
            **(session or {}),
            inter_op_threads=inter_threads,
            allow_spinning=spin,
            cuda_graphs=cuda_graphs,
            device_id=device_id,
        )
        paths, runtimes = zip(*(parse_model_argument(m) for m in models), strict=True)
        return BenchConfig(
            models=paths, model_runtimes=runtimes if any(runtimes) else (),
            batch_sizes=parse_batch_sizes(batch), warmup=warmup, iterations=iterations,
            duration_s=duration, session=sessions,
            thread_counts=parse_thread_counts(threads), io_binding=io_binding, inputs=inputs,
            data_dir=data_dir, output_dir=output if output is not None else timestamped_path("bench"),
            force=force, seed=seed, interleave=interleave, rounds=rounds, op_profile=op_profile,
            op_profile_runs=profile_runs, allow_cpu_nodes=allow_cpu_nodes,
        )  # fmt: skip

    run_command(config, partial(run_bench, console=console_for(as_json)), show, as_json=as_json,
                document=bench_document)  # fmt: skip


def run_bench(config: BenchConfig, console: Console) -> dict[str, Any]:
    """Bench with progress bars (a thread sweep: one line per thread count's process); the document."""
    from edgecnn.benchmarking import bench

    if config.is_thread_sweep:
        return bench(config, progress=_announce_thread_counts(console)).to_document()
    with rich_progress(stderr_console) as progress:
        return bench(config, progress=progress).to_document()


def bench_document(document: dict[str, Any]) -> dict[str, Any]:
    return document


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
