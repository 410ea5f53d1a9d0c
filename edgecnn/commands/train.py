"""`edgecnn train`: parse options, call edgecnn.training.train, print the summary (or the JSON document)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgecnn.commands._common import run_command, stderr_console
from edgecnn.commands.options import DataDirOption, ForceOption, JsonOption, output_option
from edgecnn.commands.progress_bars import rich_progress
from edgecnn.data.dataset_registry import names_help
from edgecnn.models.spec import OPTIMIZERS

if TYPE_CHECKING:
    from edgecnn.training import TrainConfig, TrainResult


def _summary_table(doc: dict[str, Any]) -> Table:
    cfg = doc["config"]
    table = Table(
        title=f"edgecnn train: {doc['model']['name']} on {doc['dataset']['name']}", show_header=False
    )
    table.add_column("key", style="bold")
    table.add_column("value")
    pub = doc.get("published_accuracy")
    rows = [
        ("test accuracy", f"{doc['test_accuracy']:.2%}" + (f"  (published {pub:.2%})" if pub else "")),
        ("test loss", f"{doc['test_loss']:.4f}"),
        (
            "epochs",
            f"{doc['epochs_completed']}"
            + (f" (resumed after {doc['resumed_from_epoch']})" if doc.get("resumed_from_epoch") else ""),
        ),
        (
            "recipe",
            f"{cfg['optimizer']} lr {cfg['learning_rate']:g}"
            + ("" if cfg["lr_schedule"] == "constant" else f" ({cfg['lr_schedule']})")
            + f", batch {cfg['batch_size']}, seed {cfg['seed']}, val split {cfg['validation_split']:g}",
        ),
        (
            "weights",
            "raw final weights"
            if cfg["ema_momentum"] is None
            else f"moving average of the weights (momentum {cfg['ema_momentum']:g})",
        ),
        (
            "data",
            f"{doc['dataset']['train_samples']:,} train / {doc['dataset']['val_samples']:,} val / "
            f"{doc['dataset']['test_samples']:,} test images from {doc['dataset']['source']}",
        ),
        ("model", f"{doc['model']['params']:,} parameters, {doc['model']['macs']:,} MACs per image"),
        ("strategy", _strategy_text(doc["strategy"])),
        ("train time", f"{doc['timings']['train_s']:.1f} s (total {doc['timings']['total_s']:.1f} s)"),
        ("model file", _model_file_text(doc)),
        ("plots", ", ".join(doc["plots"]) or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _strategy_text(strategy: dict[str, Any]) -> str:
    text = f"{strategy['name']} ({strategy['replicas']} replica(s)"
    if "workers" in strategy:
        text += (
            f" on {strategy['workers']} worker(s); batch {strategy['per_worker_batch']} per worker, "
            f"{strategy['global_batch']} global"
        )
    return text + ")" + (f"; note: {strategy['note']}" if strategy.get("note") else "")


def _model_file_text(doc: dict[str, Any]) -> str:
    strategy = doc["strategy"]
    if strategy.get("this_worker", strategy.get("chief")) == strategy.get("chief"):
        return doc["model_path"]
    return f"{doc['model_path']} (written by the chief, {strategy['chief']}; this worker wrote nothing)"


ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Registered model (see `edgecnn models`) or a .toml/.json spec.")
]
DatasetOption = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        "--data",
        "-d",
        help=f"{names_help()} (default: the model's)",
    ),
]
EpochsOption = Annotated[int | None, typer.Option("--epochs", "-e", help="(default: the recipe's)")]
BatchSizeOption = Annotated[
    int | None, typer.Option("--batch-size", "--batch", "-b", help="(default: the recipe's)")
]
OptimizerOption = Annotated[
    str | None, typer.Option("--optimizer", help=f"{', '.join(OPTIMIZERS)} (default: the recipe's)")
]
LearningRateOption = Annotated[
    float | None, typer.Option("--lr", "--learning-rate", help="(default: the recipe's)")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seeds init, shuffling and the validation split.")]
ValSplitOption = Annotated[
    float, typer.Option("--val-split", "--validation-split", help="Fraction of training data held out.")
]
RunDirOption = output_option("runs/<model>")
LimitOption = Annotated[
    int | None, typer.Option("--limit", help="Use only the first N train and N test images (quick runs).")
]
StrategyOption = Annotated[
    str,
    typer.Option(
        "--strategy",
        help="default, mirrored (all local GPUs) or multiworker (every worker runs the same command with "
        "its own TF_CONFIG; --batch-size is per worker).",
    ),
]
ConnectTimeoutOption = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        help="multiworker: seconds to wait for the other workers to start, and for a stalled step.",
    ),
]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")
]
PlotsOption = Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG plots.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars on stderr.")]
EmaOption = Annotated[
    bool,
    typer.Option(
        "--ema/--no-ema",
        help="Keep a moving average of the weights over the last ~10% of steps (the optimizer's "
        "trajectory stays the recipe's).",
    ),
]


def train_cmd(
    model: ModelOption = "keras-convnet",
    dataset: DatasetOption = None,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    optimizer: OptimizerOption = None,
    learning_rate: LearningRateOption = None,
    seed: SeedOption = 0,
    validation_split: ValSplitOption = 0.1,
    output: RunDirOption = None,  # type: ignore[valid-type]
    limit: LimitOption = None,
    data_dir: DataDirOption = None,
    strategy: StrategyOption = "default",
    connect_timeout: ConnectTimeoutOption = 120.0,
    resume: ResumeOption = False,
    force: ForceOption = False,
    plots: PlotsOption = True,
    progress: ProgressOption = True,
    ema: EmaOption = True,
    as_json: JsonOption = False,
) -> None:
    """Train a CNN on real data; writes model.keras, train.json and plots into the run directory."""

    def config() -> TrainConfig:
        from edgecnn.training import TrainConfig

        return TrainConfig(
            model=model,
            dataset=dataset,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            seed=seed,
            validation_split=validation_split,
            output_dir=output,
            limit=limit,
            data_dir=data_dir,
            strategy=strategy,
            connect_timeout_s=connect_timeout,
            resume=resume,
            force=force,
            ema=ema,
            plots=plots,
        )

    engine = run_train_with_progress if progress else run_train_quietly
    run_command(config, engine, show, as_json=as_json, document=train_document)


def run_train_with_progress(config: TrainConfig) -> TrainResult:
    from edgecnn.training import train

    with rich_progress(stderr_console) as on_progress:
        return train(config, progress=on_progress)


def run_train_quietly(config: TrainConfig) -> TrainResult:
    from edgecnn.training import train

    return train(config, progress=None)


def train_document(result: TrainResult) -> dict[str, Any]:
    return result.to_dict()


def show(result: TrainResult, console: Console) -> None:
    """The strategy's note on stderr; the summary table unless --json (then the document is the output)."""
    doc = result.to_dict()
    if doc["strategy"].get("note"):
        stderr_console.print(f"note: {doc['strategy']['note']}", soft_wrap=True)
    if console is not stderr_console:  # with --json the document alone is train's output
        console.print(_summary_table(doc))


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
