"""`edgecnn predict MODEL.onnx IMAGE|DIR ...`: top-k classes of image files (work is in edgecnn.predict)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from edgecnn.commands._common import console_for, emit_json, run_guarded


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict_command(
        model: Annotated[Path, typer.Argument(help="ONNX model (edgecnn metadata gives its preprocessing).")],
        inputs: Annotated[
            list[Path], typer.Argument(help="PNG/JPG/NPY files or directories of them (sorted by name).")
        ],
        top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many classes to show per image.")] = 3,
        device: Annotated[str, typer.Option(help="cpu | cuda | tensorrt | auto.")] = "cpu",
        batch_size: Annotated[int, typer.Option("--batch-size", help="Images per inference call.")] = 32,
        invert: Annotated[
            bool,
            typer.Option("--invert", help="Invert pixels (dark ink on white -> MNIST's white on black)."),
        ] = False,
        threads: Annotated[int, typer.Option(help="Intra-op threads (0 = ONNX Runtime's default).")] = 0,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Results JSON (default predict-<timestamp>.json)."),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result JSON on stdout.")] = False,
    ) -> None:
        """Classify images with an ONNX model: top-k classes with probabilities."""

        def body() -> None:
            from edgecnn.prediction.predict import PredictConfig, predict, result_table

            result = predict(
                PredictConfig(
                    model=model,
                    inputs=tuple(inputs),
                    top_k=top_k,
                    device=device,
                    batch_size=batch_size,
                    invert=invert,
                    output=output,
                    force=force,
                    intra_op_threads=threads,
                )
            )
            console = console_for(as_json)
            console.print(result_table(result))
            notes = Counter(n for p in result.predictions for n in p.notes)
            for note, count in notes.items():
                console.print(f"preprocessing: {note} ({count} of {len(result.predictions)} images)")
            for line in result.assumptions:
                console.print(f"[yellow]note:[/] {line}")
            for line in result.hints:
                console.print(f"[yellow]hint:[/] {line}")
            labelled = result.labelled
            if labelled:
                console.print(
                    f"{result.n_correct}/{len(labelled)} correct where the file name gives the true label"
                )
            console.print(f"provider: {result.provider}; saved {result.output_path}")
            if as_json:
                emit_json(result.to_document())

        run_guarded(body)
