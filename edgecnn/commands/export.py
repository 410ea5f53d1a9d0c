"""`edgecnn export MODEL.keras --quantize int8,fp16`: ONNX bundle + parity gate (see edgecnn.exporting).

The command parses options into an `ExportConfig`, runs `export` with rich progress bars on stderr and
renders the `ExportResult`: the INT8 search's attempts, the side-by-side table and the summary lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from edgecnn.commands._common import add_name_column, run_command, styled
from edgecnn.commands.options import DataDirOption, ForceOption, JsonOption, output_option
from edgecnn.core.accuracy_bound import DEFAULT_MAX_ACCURACY_DROP_PP
from edgecnn.core.input_files import show_path
from edgecnn.core.metadata import INPUT_NAME
from edgecnn.data.dataset_registry import names_help
from edgecnn.exporting.export_config import FORMATS, QUANTIZE_CHOICES
from edgecnn.exporting.quantization.quant_config import CALIBRATION_METHODS
from edgecnn.exporting.quantization.recipes import recipes_help

if TYPE_CHECKING:
    from edgecnn.exporting import ExportConfig
    from edgecnn.exporting.report import ExportResult

ModelArgument = Annotated[Path, typer.Argument(help="Keras model file (model.keras from `edgecnn train`).")]
BundleOutputOption = output_option("'bundle' beside the model")
QuantizeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--quantize", "-q", help=f"Variants: {', '.join(QUANTIZE_CHOICES)} (comma-separated or repeated)."
    ),
]
MaxAccuracyDropOption = Annotated[
    float | None,
    typer.Option(
        "--max-accuracy-drop",
        help="Largest accuracy drop vs FP32 in percentage points, enforced: files over it are not written "
        f"(default {DEFAULT_MAX_ACCURACY_DROP_PP:g}: files over it are kept and marked); INT8 searches "
        "settings to meet it.",
    ),
]
SearchLimitOption = Annotated[
    int | None,
    typer.Option("--search-limit", help="Most INT8 settings --max-accuracy-drop tries (default: all)."),
]
OpsetOption = Annotated[int, typer.Option(help="ONNX opset (13-18).")]
NchwOption = Annotated[bool, typer.Option("--nchw", help="Make the graph input NCHW instead of NHWC.")]
SimplifyOption = Annotated[
    bool, typer.Option("--simplify/--no-simplify", help="Simplify the graph with onnxslim.")
]
GraphOptOption = Annotated[
    bool, typer.Option("--graph-opt/--no-graph-opt", help="Apply edgecnn's graph rewrites.")
]
PerChannelOption = Annotated[
    bool,
    typer.Option(
        "--per-channel/--per-tensor",
        help="INT8 weight scales per channel, or per tensor (default: faster on x86).",
    ),
]
CalibrationMethodOption = Annotated[
    str, typer.Option("--calibration-method", help=f"{' | '.join(CALIBRATION_METHODS)}.")
]
CalibrationSamplesOption = Annotated[
    int, typer.Option("--calibration-samples", help="Training images used to calibrate INT8.")
]
DatasetOption = Annotated[
    str | None,
    typer.Option(
        help=f"Dataset for parity/calibration/eval: {names_help()} (default: from train.json, else none: "
        "no accuracy measured)."
    ),
]
LabelsOption = Annotated[
    str | None, typer.Option(help="Comma-separated class labels (default: train.json / dataset).")
]
EvalLimitOption = Annotated[
    int | None, typer.Option("--eval-limit", help="Evaluate on the first N test images only.")
]
LatencyOption = Annotated[
    bool, typer.Option("--latency/--no-latency", help="Quick side-by-side CPU latency check.")
]
TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        help="Where the INT8 graph will run: cpu (default: tuned for ONNX Runtime's CPU kernels) or "
        "tensorrt (model.int8-trt.onnx: signed symmetric per-channel Q/DQ that TensorRT accepts).",
    ),
]
Int8RecipesOption = Annotated[
    str | None,
    typer.Option(
        "--int8-recipes",
        help=f"Also build INT8 for other CPUs and runtimes: {recipes_help()}, or all; each is "
        "model.int8-<name>.onnx, for `edgecnn tune` to choose from on the device.",
    ),
]
FormatsOption = Annotated[
    str,
    typer.Option(
        "--formats",
        help=f"Model formats, comma-separated: {', '.join(FORMATS)} (default onnx; onnx,tflite also "
        "writes model.tflite, and model.int8.tflite / model.fp16.tflite with the matching --quantize), "
        "each gated and measured like the ONNX files.",
    ),
]
LatencyRoundsOption = Annotated[int, typer.Option("--latency-rounds", help="Timed rounds per batch.")]
NormalizationOption = Annotated[
    str | None,
    typer.Option(
        "--normalization",
        help="How the model wants its pixels: raw (0-255), unit (0-1), tf (-1..1), imagenet, or "
        "'scale=S,mean=M1/M2/M3,std=S1/S2/S3' (default: train.json, the model's own Rescaling/"
        "Normalization layers, else the dataset's).",
    ),
]
CalibrationDataOption = Annotated[
    str | None,
    typer.Option(
        "--calibration-data",
        help="INT8 calibration images: a dataset name or a folder of images (labels not needed).",
    ),
]
AccuracyGuardOption = Annotated[
    bool,
    typer.Option(
        "--accuracy-guard/--no-accuracy-guard",
        help="Refuse an FP32 accuracy near chance or far below train.json's (a sign of wrong input).",
    ),
]


def split_values(values: list[str] | None) -> tuple[str, ...]:
    """Accept both `--quantize int8 --quantize fp16` and `--quantize int8,fp16`."""
    return tuple(v.strip() for item in values or [] for v in item.split(",") if v.strip())


def export_command(
    model: ModelArgument,
    output: BundleOutputOption = None,
    quantize: QuantizeOption = None,
    max_accuracy_drop: MaxAccuracyDropOption = None,
    search_limit: SearchLimitOption = None,
    opset: OpsetOption = 17,
    nchw: NchwOption = False,
    simplify: SimplifyOption = True,
    graph_opt: GraphOptOption = True,
    per_channel: PerChannelOption = False,
    calibration_method: CalibrationMethodOption = "minmax",
    calibration_samples: CalibrationSamplesOption = 500,
    dataset: DatasetOption = None,
    data_dir: DataDirOption = None,
    labels: LabelsOption = None,
    normalization: NormalizationOption = None,
    calibration_data: CalibrationDataOption = None,
    accuracy_guard: AccuracyGuardOption = True,
    eval_limit: EvalLimitOption = None,
    latency: LatencyOption = True,
    latency_rounds: LatencyRoundsOption = 30,
    target: TargetOption = "cpu",
    int8_recipes: Int8RecipesOption = None,
    formats: FormatsOption = "onnx",
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Convert a Keras model to ONNX, gate it against Keras, and build measured quantized variants."""

    def config() -> ExportConfig:
        from edgecnn.exporting import ExportConfig, QuantizationConfig

        return ExportConfig(
            model_path=model,
            output_dir=output if output is not None else model.parent / "bundle",
            quantize=split_values(quantize),
            data_dir=data_dir,
            dataset=dataset,
            labels=parse_labels(labels),
            normalization=normalization,
            calibration_data=calibration_data,
            accuracy_guard=accuracy_guard,
            opset=opset,
            nchw=nchw,
            simplify=simplify,
            graph_rewrites=graph_opt,
            max_accuracy_drop=max_accuracy_drop,
            search_limit=search_limit,
            eval_limit=eval_limit,
            latency=latency,
            latency_rounds=latency_rounds,
            target=target,
            int8_recipes=split_values([int8_recipes] if int8_recipes else None),
            formats=split_values([formats]),
            force=force,
            quantization=QuantizationConfig(
                per_channel=per_channel,
                calibration_method=calibration_method,
                calibration_samples=calibration_samples,
            ),
        )

    run_command(config, run_export, show, as_json=as_json, failure=export_failure)


def parse_labels(labels: str | None) -> tuple[str, ...] | None:
    """`--labels a,b,c` as a tuple; None when the option is not given."""
    return None if labels is None else tuple(x.strip() for x in labels.split(","))


def run_export(config: ExportConfig) -> ExportResult:
    """Export with progress bars. The exporting package is imported here so that `edgecnn --help`
    does not load numpy."""
    from edgecnn.commands.progress_bars import rich_progress
    from edgecnn.exporting import export

    with rich_progress() as progress:
        return export(config, progress=progress)


def show(result: ExportResult, console: Console) -> None:
    """The INT8 search's attempts, the side-by-side table, the summary lines and notes."""
    if result.attempts:
        console.print(attempts_table(result))
    console.print(result_table(result))
    for line in summary_lines(result):
        console.print(line)
    for line in result.notes:
        console.print(f"note: {line}")
    for line in result.assumptions:
        console.print(styled("assumed:", "yellow", f" {line}"))
    for line in result.warnings:
        console.print(styled("warning:", "yellow", f" {line}"))
    console.print(f"saved {show_path(result.json_path)}", soft_wrap=True)


def export_failure(result: ExportResult) -> str | None:
    """The parity gate's verdict: the bundle and its JSON are written, and the command exits 1."""
    return result.failure


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


NO_LABELS = "no labelled data"


def result_table(result: ExportResult) -> Table:
    """The side-by-side table printed at the end of an export (rich). Latency cells show the
    variant's median and its speed relative to FP32 measured in the same rounds (x1.25 = faster)."""
    batches = sorted({b for r in result.variants.values() for b in r.latency_ms})
    table = Table(title=f"export {show_path(result.output_dir)}", title_justify="left", box=box.SIMPLE_HEAD)
    labelled = result.labelled_data
    names = {
        r.name: r.name
        + ("" if r.kept else " ✗")
        + (" ⚠" if r.kept and r.within_bound is False else "")
        + (" ★" if result.selected == r.name else "")
        for r in result.variants.values()
    }
    add_name_column(table, "variant", names.values())
    # Without labels there is no accuracy and no drop: one column says so instead of two numbers.
    table.add_column("acc %" if labelled else "accuracy", justify="right", overflow="fold")
    if labelled:
        table.add_column("Δ pp", justify="right", overflow="fold")
    table.add_column("agree %", justify="right", overflow="fold")
    table.add_column("size", justify="right", overflow="fold")
    for b in batches:
        table.add_column(f"b{b} ms", justify="right", overflow="fold")
    for r in result.variants.values():
        row = [names[r.name]]
        if r.accuracy is None:
            row.append(NO_LABELS)
        else:
            row.append(f"{r.accuracy * 100:.2f}")
        if labelled:
            row.append(
                "-" if r.name == "fp32" or r.accuracy_drop_pp is None else f"{-r.accuracy_drop_pp:+.2f}"
            )
        row += [
            f"{r.top1_agreement * 100:.2f}",
            f"{r.size_bytes / 1024:.0f}K {r.size_ratio * 100:.0f}%",
        ]
        for b in batches:
            ms = r.latency_ms.get(b)
            if ms is None:
                row.append("-")
            elif r.name == "fp32":
                row.append(f"{ms:.3g}")
            else:
                row.append(f"{ms:.3g} x{r.speedup.get(b, float('nan')):.2f}")
        table.add_row(*row)
    return table


def attempts_table(result: ExportResult) -> Table:
    """The INT8 settings the accuracy-aware search tried, with what each scored."""

    table = Table(title="INT8 accuracy-aware search", title_justify="left")
    for col in ("#", "settings", "accuracy", "drop", "within bound"):
        table.add_column(col, justify="right" if col in ("#", "accuracy", "drop") else "left")
    for a in result.attempts:
        table.add_row(
            str(a.index),
            Text.assemble(a.settings, (f" {a.note}", "red") if a.note else ""),
            "-" if a.accuracy is None else f"{a.accuracy * 100:.2f}%",
            "-" if a.accuracy_drop_pp is None else f"{a.accuracy_drop_pp:.2f} pp",
            Text("yes", "green") if a.within_bound else "no",
        )
    return table


def contract_line(result: ExportResult) -> str:
    """The input/output contract the metadata records, and where the normalization came from."""
    from edgecnn.core.metadata import Normalization
    from edgecnn.exporting.input_contract import normalization_name

    name = normalization_name(Normalization.from_dict(result.normalization))
    pixels = f"input {name} (from {result.normalization_source})"
    if result.in_model_preprocessing and name == "raw":
        pixels = f"input raw 0-255 pixels (the model starts with {result.in_model_preprocessing})"
    return f"{pixels}; output {result.output_kind}"


def bound_lines(result: ExportResult) -> list[str | Text]:
    """One line per variant outside the accuracy bound: kept and marked (the default bound) or not
    written (an explicit --max-accuracy-drop), with the layers INT8 hurts most (per-layer SQNR)."""
    lines: list[str | Text] = []
    for r in result.outside_bound:
        how = ("⚠ kept, marked within_bound false", "yellow") if r.kept else ("✗ not written", "red")
        bound = f"{result.max_accuracy_drop:g} pp" + (
            " (default)" if result.bound_source == "default" else ""
        )
        line = f": {r.name} loses {r.accuracy_drop_pp:.2f} pp, over the bound {bound}"
        if r.worst_layers:
            worst = ", ".join(f"{w['layer']} {w['sqnr_db']:.1f} dB" for w in r.worst_layers)
            line += f"; lowest SQNR: {worst}"
        lines.append(styled(*how, line))
    return lines


def summary_lines(result: ExportResult) -> list[str | Text]:
    """The lines under the table: route, node counts, parity, and what is slow, dropped or selected."""
    parity = ", ".join(
        f"batch {p.batch_size}: max |Δ| {p.max_abs_diff:.2g}, "
        f"top-1 {p.top1_agreement * 100:.0f}% ({p.n} images)"
        for p in result.parity
    )
    nodes = result.node_counts
    lines: list[str | Text] = [
        f"route {result.route}, opset {result.opset}, input {result.layout} named {INPUT_NAME!r}",
        f"nodes {nodes['converted']} converted -> {nodes['simplified']} simplified -> {nodes['final']} final"
        + (f" (rewrites: {', '.join(result.graph_rewrites)})" if result.graph_rewrites else ""),
        f"parity vs Keras on {result.parity_inputs}: {parity}",
        contract_line(result),
        "latency: quick CPU check, variants run round-robin with FP32; `edgecnn bench` is the careful one",
    ]
    slow = [
        f"{r.name} (b{', b'.join(str(b) for b, x in r.speedup.items() if x < 1.0)}"
        + (", a GPU variant)" if r.name == "fp16" else ")")
        for r in result.variants.values()
        if r.slower_than_fp32
    ]
    if slow:
        lines.append(styled("slower than FP32 on this CPU:", "red", f" {', '.join(slow)}"))
    lines += bound_lines(result)
    if result.selected:
        lines.append(
            f"★ auto: selected {result.selected} (fastest at batch 1 within {result.max_accuracy_drop:g} pp)"
        )
    return lines
