"""`edgecnn eval MODEL.onnx --data mnist`: accuracy on a real test set (work is in edgecnn.evaluate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgecnn.commands._common import console_for, emit_json, run_guarded


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        model: Annotated[Path, typer.Argument(help="ONNX model to evaluate.")],
        data: Annotated[
            str | None,
            typer.Option(
                help="mnist | fashion_mnist | cifar10 | folder:PATH (default: the model's own dataset)."
            ),
        ] = None,
        data_dir: Annotated[
            Path | None, typer.Option("--data-dir", help="Directory holding the dataset files.")
        ] = None,
        device: Annotated[str, typer.Option(help="cpu | cuda | tensorrt | auto.")] = "cpu",
        batch_size: Annotated[int, typer.Option("--batch-size", help="Images per inference call.")] = 256,
        limit: Annotated[
            int | None, typer.Option(help="Evaluate only the first N test images (default: all).")
        ] = None,
        threads: Annotated[int, typer.Option(help="Intra-op threads (0 = ONNX Runtime's default).")] = 0,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Result directory (default eval-<timestamp>)."),
        ] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Replace an existing --output directory.")
        ] = False,
        download: Annotated[
            bool, typer.Option("--download/--no-download", help="Download the dataset if it is not found.")
        ] = True,
        plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Save the confusion-matrix PNG.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")] = False,
    ) -> None:
        """Accuracy, per-class accuracy and confusion matrix of an ONNX model on the real test set."""

        def body() -> None:
            from edgecnn.evaluation.evaluate import EvalConfig, evaluate, result_table

            result = evaluate(
                EvalConfig(
                    model=model,
                    data=data,
                    data_dir=data_dir,
                    device=device,
                    batch_size=batch_size,
                    limit=limit,
                    output_dir=output,
                    force=force,
                    plot=plot,
                    download=download,
                    intra_op_threads=threads,
                )
            )
            console = console_for(as_json)
            console.print(result_table(result))
            for line in result.assumptions:
                console.print(f"[yellow]note:[/] {line}")
            console.print(
                f"accuracy {result.accuracy:.4f} ({result.correct}/{result.num_images}) on "
                f"{result.provider}; saved {result.json_path}"
                + (f" and {result.plot_path}" if result.plot_path else "")
            )
            if as_json:
                emit_json(result.to_document())

        run_guarded(body)
