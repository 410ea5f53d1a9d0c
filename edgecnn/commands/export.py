"""`edgecnn export MODEL.keras --quantize int8,fp16`: ONNX bundle + parity gate (see edgecnn.export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.commands._common import console_for, emit_json, run_guarded


def _split(values: list[str] | None) -> tuple[str, ...]:
    """Accept both `--quantize int8 --quantize fp16` and `--quantize int8,fp16`."""
    return tuple(v.strip() for item in values or [] for v in item.split(",") if v.strip())


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_command(
        model: Annotated[Path, typer.Argument(help="Keras model file (model.keras from `edgecnn train`).")],
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Bundle directory (default: 'bundle' beside the model)."),
        ] = None,
        quantize: Annotated[
            list[str] | None,
            typer.Option(
                "--quantize",
                "-q",
                help="Variants: int8, fp16, dynamic, all, auto (comma-separated or repeated).",
            ),
        ] = None,
        max_accuracy_drop: Annotated[
            float | None,
            typer.Option(
                "--max-accuracy-drop",
                help="Largest accuracy drop vs FP32 in percentage points; INT8 searches settings to meet it.",
            ),
        ] = None,
        search_limit: Annotated[
            int | None,
            typer.Option(
                "--search-limit", help="Most INT8 settings --max-accuracy-drop tries (default: all)."
            ),
        ] = None,
        opset: Annotated[int, typer.Option(help="ONNX opset (13-18).")] = 17,
        nchw: Annotated[
            bool, typer.Option("--nchw", help="Make the graph input NCHW instead of NHWC.")
        ] = False,
        simplify: Annotated[
            bool, typer.Option("--simplify/--no-simplify", help="Simplify the graph with onnxslim.")
        ] = True,
        graph_opt: Annotated[
            bool, typer.Option("--graph-opt/--no-graph-opt", help="Apply edgecnn's graph rewrites.")
        ] = True,
        per_channel: Annotated[
            bool,
            typer.Option(
                "--per-channel/--per-tensor",
                help="INT8 weight scales per channel, or per tensor (default: faster on x86).",
            ),
        ] = False,
        calibration_method: Annotated[
            str, typer.Option("--calibration-method", help="minmax | entropy | percentile.")
        ] = "minmax",
        calibration_samples: Annotated[
            int, typer.Option("--calibration-samples", help="Training images used to calibrate INT8.")
        ] = 500,
        dataset: Annotated[
            str | None,
            typer.Option(help="Dataset for parity/calibration/eval (default: from train.json, else mnist)."),
        ] = None,
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", help="Directory holding the dataset files.")
        ] = None,
        labels: Annotated[
            str | None, typer.Option(help="Comma-separated class labels (default: train.json / dataset).")
        ] = None,
        eval_limit: Annotated[
            int | None, typer.Option("--eval-limit", help="Evaluate on the first N test images only.")
        ] = None,
        latency: Annotated[
            bool, typer.Option("--latency/--no-latency", help="Quick side-by-side CPU latency check.")
        ] = True,
        latency_rounds: Annotated[int, typer.Option("--latency-rounds", help="Timed rounds per batch.")] = 30,
        force: Annotated[bool, typer.Option(help="Replace an existing bundle directory.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print export.json on stdout.")] = False,
    ) -> None:
        """Convert a Keras model to ONNX, gate it against Keras, and build measured quantized variants."""

        def body() -> None:
            from edgecnn.core.errors import EdgecnnError
            from edgecnn.exporting.export import (
                ExportConfig,
                attempts_table,
                export,
                result_table,
                summary_lines,
            )
            from edgecnn.exporting.quantize import QuantizationConfig

            config = ExportConfig(
                model_path=model,
                output_dir=output if output is not None else model.parent / "bundle",
                quantize=_split(quantize),
                data_dir=data_dir,
                dataset=dataset,
                labels=tuple(x.strip() for x in labels.split(",")) if labels else None,
                opset=opset,
                nchw=nchw,
                simplify=simplify,
                graph_rewrites=graph_opt,
                quantization=QuantizationConfig(
                    per_channel=per_channel,
                    calibration_method=calibration_method,
                    calibration_samples=calibration_samples,
                ),
                max_accuracy_drop=max_accuracy_drop,
                search_limit=search_limit,
                eval_limit=eval_limit,
                latency=latency,
                latency_rounds=latency_rounds,
                force=force,
                progress=True,
            )
            result = export(config)
            console = console_for(as_json)
            if result.attempts:
                console.print(attempts_table(result))
            console.print(result_table(result))
            for line in summary_lines(result):
                console.print(line)
            for line in result.assumptions:
                console.print(f"[yellow]assumed:[/] {line}")
            for line in result.warnings:
                console.print(f"[yellow]warning:[/] {line}")
            console.print(f"saved {result.json_path}")
            if as_json:
                emit_json(result.to_document())
            if result.failure:
                raise EdgecnnError(result.failure)

        run_guarded(body)
