"""edgecnn.training owns `edgecnn train`: the config, the run directory (checkpoints, --resume,
--force), distribution strategies, optimizer and weight averaging, the Keras callbacks, train.json and
the run's plots. TensorFlow is imported only when `train` runs."""

from edgecnn.training.ema import averaged_weights, ema_momentum_for
from edgecnn.training.record import TRAIN_JSON, TrainRecord
from edgecnn.training.resolved import ResolvedConfig, resolve
from edgecnn.training.train_config import (
    CHECKPOINT_PATTERN,
    MODEL_FILE,
    STATE_FILE,
    STRATEGIES,
    TrainConfig,
    TrainingInterrupted,
    TrainResult,
)
from edgecnn.training.train_run import train

__all__ = [
    "CHECKPOINT_PATTERN",
    "MODEL_FILE",
    "STATE_FILE",
    "STRATEGIES",
    "TRAIN_JSON",
    "ResolvedConfig",
    "TrainConfig",
    "TrainRecord",
    "TrainResult",
    "TrainingInterrupted",
    "averaged_weights",
    "ema_momentum_for",
    "resolve",
    "train",
]
