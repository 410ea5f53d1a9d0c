"""What `train` takes and gives back: `TrainConfig` (validated options), `TrainResult` (a typed view of
train.json), `TrainingInterrupted`, and the names of the files a run directory holds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.models import OPTIMIZERS
from edgecnn.training.record import TRAIN_JSON

STRATEGIES = ("default", "mirrored", "multiworker")
MODEL_FILE = "model.keras"
STATE_FILE = "checkpoint-state.json"
CHECKPOINT_PATTERN = "checkpoint-epoch{epoch}.keras"
DEFAULT_RUNS_DIR = Path("runs")


class TrainingInterrupted(EdgecnnError):
    """Ctrl-C during training: the last finished epoch's checkpoint stays for --resume."""

    exit_code = 130


@dataclass(frozen=True)
class TrainConfig:
    """What to train. None for epochs/batch_size/optimizer/learning_rate/dataset means: the recipe's."""

    model: str = "keras-convnet"
    dataset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    seed: int = 0
    validation_split: float = 0.1
    output_dir: Path | None = None  # None: runs/<model name>
    limit: int | None = None  # use only the first N training and N test images (quick runs)
    data_dir: Path | None = None
    strategy: str = "default"
    resume: bool = False
    force: bool = False
    plots: bool = True
    ema: bool = True  # keep an exponential moving average of the weights (see edgecnn.training.ema)
    # --strategy multiworker: how long to wait for the other workers to appear, and for a stalled step.
    connect_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise EdgecnnError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")

        for name in ("epochs", "batch_size", "limit"):
            positive_int(name)
        if self.learning_rate is not None and not (0 < self.learning_rate < 10):
            raise EdgecnnError(f"learning rate must be in (0, 10), got {self.learning_rate}")
        if self.optimizer is not None and self.optimizer.lower() not in OPTIMIZERS:
            raise EdgecnnError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
        if not 0.0 <= self.validation_split < 1.0:
            raise EdgecnnError(f"validation split must be in [0, 1), got {self.validation_split}")
        if self.strategy not in STRATEGIES:
            raise EdgecnnError(f"unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}")
        if self.resume and self.force:
            raise EdgecnnError("--resume continues a run and --force replaces it; pass only one")
        timeout = self.connect_timeout_s
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < math.inf:
            raise EdgecnnError(f"connect timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise EdgecnnError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("output_dir", "data_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if self.optimizer is not None:
            object.__setattr__(self, "optimizer", self.optimizer.lower())

    def run_dir_for(self, model_name: str) -> Path:
        """Where the run is written: --output, or runs/<model name>."""
        return self.output_dir if self.output_dir is not None else DEFAULT_RUNS_DIR / model_name


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    model_path: Path
    train_json: Path
    model_name: str
    dataset: str
    epochs: int
    test_accuracy: float
    test_loss: float
    history: dict[str, list[float]]
    timings: dict[str, Any]
    plots: tuple[Path, ...]
    params: int
    macs: int
    resumed_from_epoch: int | None
    document: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> TrainResult:
        """The result of a finished run, read from the train.json document it wrote."""
        run_dir = Path(document["run_dir"])
        return cls(
            run_dir=run_dir,
            model_path=Path(document["model_path"]),
            train_json=run_dir / TRAIN_JSON,
            model_name=document["model"]["name"],
            dataset=document["dataset"]["name"],
            epochs=document["epochs_completed"],
            test_accuracy=document["test_accuracy"],
            test_loss=document["test_loss"],
            history=document["history"],
            timings=document["timings"],
            plots=tuple(run_dir / name for name in document["plots"]),
            params=document["model"]["params"],
            macs=document["model"]["macs"],
            resumed_from_epoch=document["resumed_from_epoch"],
            document=document,
        )

    def to_dict(self) -> dict[str, Any]:
        """The same document as train.json."""
        return self.document
